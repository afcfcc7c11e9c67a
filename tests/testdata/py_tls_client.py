"""A client nobody here wrote: Python's ssl and msgpack. Connects to HOST PORT
over TLS (trusting CA_FILE, checking the certificate against HOST), sends
proxy.auth with TOKEN as its first message, then, when that succeeded, echoes
a few values and checks each comes back as sent.

Usage: py_tls_client.py HOST PORT CA_FILE TOKEN

Prints one JSON object: {"auth": true | {"code", "message"}, "echoed": N,
"mismatches": [...], "closed": bool} where closed says whether the server
closed the connection after a refused proxy.auth."""
import json
import socket
import ssl
import sys

import msgpack


def main():
    host, port, ca_file, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection((host, port), timeout=20)
    sock = context.wrap_socket(raw, server_hostname=host)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    def receive():
        while True:
            try:
                return unpacker.unpack()
            except msgpack.OutOfData:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return None
                unpacker.feed(chunk)

    out = {"auth": None, "echoed": 0, "mismatches": [], "closed": False}
    sock.sendall(msgpack.packb([0, 1, "proxy.auth", [token]]))
    answer = receive()
    if answer is None:
        out["closed"] = True
        print(json.dumps(out))
        return
    _, msgid, error, result = answer
    out["auth"] = error if error is not None else result
    if error is not None:
        out["closed"] = receive() is None
        print(json.dumps(out))
        return
    values = ["hello", 42, -7, 1.5, b"\x00\xff", [1, [2, 3]], {"a": None}, "é" * 1000, 2**63]
    for msgid, value in enumerate(values, start=2):
        sock.sendall(msgpack.packb([0, msgid, "echo", [value]], use_bin_type=True))
        answer = receive()
        if answer is None:
            raise SystemExit("connection closed by the server")
        if answer[1] != msgid or answer[2] is not None or answer[3] != value:
            out["mismatches"].append(repr(answer))
        else:
            out["echoed"] += 1
    sock.close()
    print(json.dumps(out))


main()
