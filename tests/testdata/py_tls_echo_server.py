"""A TLS MessagePack-RPC server nobody here wrote: Python's ssl and msgpack,
for `--upstream tls:...`. It answers ping with "pong", echo with its first
param, and anything else with an error; one thread per connection.

Usage: py_tls_echo_server.py CERT_FILE KEY_FILE

Listens on 127.0.0.1 (a free port) and logs "listening on 127.0.0.1:PORT" on
stderr once ready."""
import socket
import ssl
import sys
import threading

import msgpack


def serve(conn):
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    try:
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                return
            unpacker.feed(chunk)
            for message in unpacker:
                if message[0] != 0:
                    continue  # notifications and responses need no answer
                _, msgid, method, params = message
                if method == "ping":
                    answer = [1, msgid, None, "pong"]
                elif method == "echo":
                    answer = [1, msgid, None, params[0]]
                else:
                    answer = [1, msgid, {"code": "METHOD_NOT_FOUND", "message": method}, None]
                conn.sendall(msgpack.packb(answer, use_bin_type=True))
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main():
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
    while True:
        raw, _ = listener.accept()
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
