#!/usr/bin/env python3
"""A MessagePack-RPC worker in plain Python (no packages), for `--worker-cmd`.

It follows the worker contract: listen on the Unix socket given as argv[1]
(or $PROXY_WORKER_SOCKET), answer requests, and exit when stdin closes
(the proxy is gone) or on a `shutdown` notification. Its tiny MessagePack
codec covers nil, bool, int (up to 2^64-1), float64, str, bin, array and map,
in the canonical (shortest) forms.

For tests, environment variables make it misbehave the way real servers do:
PY_WORKER_GREET=1 sends, on each connection, a notification and a request of
its own with method names as bin (as pynvim does); PY_WORKER_SILENT_UNKNOWN=1
never answers a method it does not know; PY_WORKER_IGNORE_SHUTDOWN=1 ignores
the shutdown notification and the end of stdin (as Neovim does);
PY_WORKER_STOP_READING=1 stops reading its connection after the first request
(the method stop_reading does it for one worker); PY_WORKER_NO_PING=1 does
not know ping.
"""
import asyncio
import os
import struct
import sys


class Incomplete(Exception):
    pass


def unpack(buf, pos):
    if pos >= len(buf):
        raise Incomplete()
    b = buf[pos]
    pos += 1

    def take(n):
        if pos + n > len(buf):
            raise Incomplete()
        return buf[pos:pos + n]

    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return take(n).decode(), pos + n
    if 0x90 <= b <= 0x9F:
        return unpack_array(buf, pos, b & 0x0F)
    if 0x80 <= b <= 0x8F:
        return unpack_map(buf, pos, b & 0x0F)
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
             0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if b in fixed:
        fmt = fixed[b]
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, take(n))[0], pos + n
    lens = {0xD9: (">B", "str"), 0xDA: (">H", "str"), 0xDB: (">I", "str"),
            0xC4: (">B", "bin"), 0xC5: (">H", "bin"), 0xC6: (">I", "bin"),
            0xDC: (">H", "arr"), 0xDD: (">I", "arr"), 0xDE: (">H", "map"), 0xDF: (">I", "map")}
    if b in lens:
        fmt, kind = lens[b]
        h = struct.calcsize(fmt)
        n = struct.unpack(fmt, take(h))[0]
        pos += h
        if kind == "arr":
            return unpack_array(buf, pos, n)
        if kind == "map":
            return unpack_map(buf, pos, n)
        if pos + n > len(buf):
            raise Incomplete()
        data = bytes(buf[pos:pos + n])
        return (data.decode() if kind == "str" else data), pos + n
    raise ValueError("unsupported MessagePack byte 0x%02x" % b)


def unpack_array(buf, pos, n):
    out = []
    for _ in range(n):
        v, pos = unpack(buf, pos)
        out.append(v)
    return out, pos


def unpack_map(buf, pos, n):
    out = {}
    for _ in range(n):
        k, pos = unpack(buf, pos)
        v, pos = unpack(buf, pos)
        out[k] = v
    return out, pos


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if v >= 0:
            for limit, head, fmt in ((0x7F, b"", ">B"), (0xFF, b"\xcc", ">B"), (0xFFFF, b"\xcd", ">H"),
                                     (0xFFFFFFFF, b"\xce", ">I"), (2**64 - 1, b"\xcf", ">Q")):
                if v <= limit:
                    return head + struct.pack(fmt, v)
            raise OverflowError("integer beyond 64 bits")
        if v >= -32:
            return bytes([v + 0x100])
        for limit, head, fmt in ((-0x80, b"\xd0", ">b"), (-0x8000, b"\xd1", ">h"),
                                 (-0x80000000, b"\xd2", ">i"), (-2**63, b"\xd3", ">q")):
            if v >= limit:
                return head + struct.pack(fmt, v)
        raise OverflowError("integer beyond 64 bits")
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        data = v.encode()
        return b"\xdb" + struct.pack(">I", len(data)) + data
    if isinstance(v, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError("cannot pack %r" % type(v))


METHODS = {
    "ping": lambda: "pong",
    "echo": lambda x=None: x,
    "whoami": lambda: {"impl": "python", "pid": os.getpid()},
    # Answers, then this connection is never read again (a worker that hangs).
    "stop_reading": lambda: os.getpid(),
}
if os.environ.get("PY_WORKER_NO_PING") == "1":
    del METHODS["ping"]


GREET = os.environ.get("PY_WORKER_GREET") == "1"
SILENT_UNKNOWN = os.environ.get("PY_WORKER_SILENT_UNKNOWN") == "1"
IGNORE_SHUTDOWN = os.environ.get("PY_WORKER_IGNORE_SHUTDOWN") == "1"
STOP_READING = os.environ.get("PY_WORKER_STOP_READING") == "1"


async def serve(reader, writer, stop):
    if GREET:
        writer.write(pack([2, b"nvim_set_client_info", ["py_worker", {}, "remote", {}, {}]]))
        writer.write(pack([0, 7, b"nvim_get_api_info", []]))
    buf = bytearray()
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buf += chunk
        while buf:
            try:
                msg, end = unpack(buf, 0)
            except Incomplete:
                break
            del buf[:end]
            if msg[0] == 0:
                _, msgid, method, params = msg
                fn = METHODS.get(method)
                if fn is None:
                    if SILENT_UNKNOWN:
                        continue
                    err = {"code": "METHOD_NOT_FOUND", "message": "Cannot call %s: no such method" % method}
                    writer.write(pack([1, msgid, err, None]))
                else:
                    writer.write(pack([1, msgid, None, fn(*params)]))
                if STOP_READING or method == "stop_reading":
                    await writer.drain()
                    print("stopped reading", file=sys.stderr, flush=True)
                    await asyncio.sleep(3600)
            elif msg[0] == 1 and msg[1] == 7:
                code = msg[2]["code"] if isinstance(msg[2], dict) else msg[2]
                print("greeting answered: %s" % code, file=sys.stderr, flush=True)
            elif msg[0] == 2 and msg[1] == "shutdown" and not IGNORE_SHUTDOWN:
                stop.set()
        await writer.drain()
    writer.close()


async def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ["PROXY_WORKER_SOCKET"]
    stop = asyncio.Event()
    server = await asyncio.start_unix_server(lambda r, w: serve(r, w, stop), path=path)
    loop = asyncio.get_running_loop()
    # stdin closing means the proxy is gone.
    def on_stdin():
        if not os.read(sys.stdin.fileno(), 512):
            loop.remove_reader(sys.stdin.fileno())
            if not IGNORE_SHUTDOWN:
                stop.set()
    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await stop.wait()
    server.close()
    try:
        os.unlink(path)
    except OSError:
        pass
    os._exit(0)  # without waiting for open connections to be torn down


asyncio.run(main())
