"""Echoes every vector of msgpack_vectors.py through a MessagePack-RPC server
(host port, or unix:/path) with Python's msgpack, an implementation nobody
here wrote, and compares each whole response byte for byte with what a
correct server must send: [1, msgid, nil, <the value as sent>].

Prints one JSON object: {"sent": N, "mismatches": [{name, sent, got}]}."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import msgpack  # noqa: E402
from msgpack_vectors import packb, vectors  # noqa: E402


def connect(args):
    if args[0].startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(args[0][5:])
    else:
        s = socket.create_connection((args[0], int(args[1])))
    s.settimeout(20)
    return s


def main():
    sock = connect(sys.argv[1:])
    unpacker = msgpack.Unpacker(raw=True, use_list=False, strict_map_key=False, timestamp=0, ext_hook=msgpack.ExtType)
    mismatches = []
    sent = 0
    for msgid, (name, value) in enumerate(vectors(), start=1):
        param = packb(value)
        # The request is made by hand so the param's bytes are exactly the vector's.
        request = b"\x94\x00" + packb(msgid) + packb("echo") + b"\x91" + param
        expected = b"\x94\x01" + packb(msgid) + b"\xc0" + param
        sock.sendall(request)
        sent += 1
        got = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("connection closed by the server")
            got += chunk
            unpacker.feed(chunk)
            try:
                unpacker.unpack()
                break
            except msgpack.OutOfData:
                continue
        if got != expected:
            mismatches.append({"name": name, "sent": expected.hex()[:120], "got": got.hex()[:120]})
    print(json.dumps({"sent": sent, "mismatches": mismatches}))


main()
