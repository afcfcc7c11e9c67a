#!/usr/bin/env python3
"""A worker for `proxy serve --worker-cmd`, in plain Python (no packages).

    proxy serve --workers 4 --worker-cmd "python3 examples/python_worker.py {socket}"

It keeps the worker contract (docs/protocol.md, "The worker contract"):
listen on the Unix socket given as argv[1] (or $PROXY_WORKER_SOCKET), answer
MessagePack-RPC requests (the proxy pipelines them on one connection, with
msgids of its own), answer `ping` so the proxy knows it is ready, and exit on
a `shutdown` notification or when stdin (a pipe from the proxy) closes.

Methods: ping, echo(x), add(a, b), pid(), and legacy.call for the legacy
protocol's function 1000. Errors are {code, message} maps. Its small
MessagePack codec covers every type (nil, bool, int from -2^63 to 2^64-1,
float, str, bin, array, map, ext), written in the shortest forms, so an echo
is exact (a float32 comes back as a float64 of the same value).
"""
import asyncio
import collections
import os
import stat
import struct
import sys

# A MessagePack extension value (the timestamp is type -1), kept as it came.
Ext = collections.namedtuple("Ext", "type data")


class Incomplete(Exception):
    """The buffer ends inside a message: wait for more bytes."""


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


# --- MessagePack --------------------------------------------------------------

def unpack(buf, pos):
    """Decodes one value at buf[pos:]; returns (value, next position)."""
    def take(n, at):
        if at + n > len(buf):
            raise Incomplete()
        return buf[at:at + n]

    b = take(1, pos)[0]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return take(n, pos).decode(), pos + n
    if 0x90 <= b <= 0x9F:
        return unpack_items(buf, pos, b & 0x0F, 1)
    if 0x80 <= b <= 0x8F:
        return unpack_items(buf, pos, b & 0x0F, 2)
    if b in (0xC0, 0xC2, 0xC3):
        return {0xC0: None, 0xC2: False, 0xC3: True}[b], pos
    fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
             0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if b in fixed:
        n = struct.calcsize(fixed[b])
        return struct.unpack(fixed[b], take(n, pos))[0], pos + n
    fixext = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
    if b in fixext:
        n = fixext[b]
        head = take(1 + n, pos)
        return Ext(struct.unpack(">b", head[:1])[0], head[1:]), pos + 1 + n
    sized = {0xD9: (1, "str"), 0xDA: (2, "str"), 0xDB: (4, "str"),
             0xC7: (1, "ext"), 0xC8: (2, "ext"), 0xC9: (4, "ext"),
             0xC4: (1, "bin"), 0xC5: (2, "bin"), 0xC6: (4, "bin"),
             0xDC: (2, "array"), 0xDD: (4, "array"), 0xDE: (2, "map"), 0xDF: (4, "map")}
    if b not in sized:
        raise ValueError(f"unsupported MessagePack type 0x{b:02x}")
    width, kind = sized[b]
    n = int.from_bytes(take(width, pos), "big")
    pos += width
    if kind == "array":
        return unpack_items(buf, pos, n, 1)
    if kind == "map":
        return unpack_items(buf, pos, n, 2)
    if kind == "ext":
        ext_type = struct.unpack(">b", take(1, pos))[0]
        return Ext(ext_type, take(n, pos + 1)), pos + 1 + n
    data = take(n, pos)
    return (data.decode() if kind == "str" else data), pos + n


def unpack_items(buf, pos, n, per_item):
    items = []
    for _ in range(n * per_item):
        value, pos = unpack(buf, pos)
        items.append(value)
    if per_item == 1:
        return items, pos
    return dict(zip(items[0::2], items[1::2])), pos


def pack(v):
    """Encodes a value in the shortest form, as every MessagePack library does."""
    if v is None:
        return b"\xc0"
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        forms = [(0, 0xFF, b"\xcc", ">B"), (0, 0xFFFF, b"\xcd", ">H"),
                 (0, 0xFFFFFFFF, b"\xce", ">I"), (0, 2**64 - 1, b"\xcf", ">Q"),
                 (-0x80, 0x7F, b"\xd0", ">b"), (-0x8000, 0x7FFF, b"\xd1", ">h"),
                 (-2**31, 2**31 - 1, b"\xd2", ">i"), (-2**63, 2**63 - 1, b"\xd3", ">q")]
        for low, high, tag, fmt in forms:
            if low <= v <= high:
                return tag + struct.pack(fmt, v)
        raise ValueError("integer beyond 64 bits")
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        data = v.encode()
        return sized_head(len(data), 0xA0, 31, b"\xd9", b"\xda", b"\xdb") + data
    if isinstance(v, (bytes, bytearray)):
        return sized_head(len(v), None, 0, b"\xc4", b"\xc5", b"\xc6") + bytes(v)
    if isinstance(v, Ext):
        n = len(v.data)
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        head = bytes([fixed[n]]) if n in fixed else sized_head(n, None, 0, b"\xc7", b"\xc8", b"\xc9")
        return head + struct.pack(">b", v.type) + bytes(v.data)
    if isinstance(v, (list, tuple)):
        return sized_head(len(v), 0x90, 15, None, b"\xdc", b"\xdd") + b"".join(map(pack, v))
    if isinstance(v, dict):
        head = sized_head(len(v), 0x80, 15, None, b"\xde", b"\xdf")
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(f"cannot encode {type(v).__name__}")


def sized_head(n, fix, fix_max, tag8, tag16, tag32):
    if fix is not None and n <= fix_max:
        return bytes([fix | n])
    if tag8 is not None and n <= 0xFF:
        return tag8 + struct.pack(">B", n)
    if n <= 0xFFFF:
        return tag16 + struct.pack(">H", n)
    return tag32 + struct.pack(">I", n)


# --- Methods ------------------------------------------------------------------

def legacy_call(request):
    """The legacy protocol's frames arrive as legacy.call({func_no, user_id, body, ...})."""
    if request.get("func_no") == 1000:
        return f"handle 1000 function successful for {request.get('user_id')}"
    raise RpcError("UNKNOWN_FUNCTION", f"Cannot handle function {request.get('func_no')}")


def add(a, b):
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
        raise RpcError("INVALID_PARAMS", "Cannot add: a and b must be numbers")
    return a + b


METHODS = {
    "ping": lambda: "pong",
    "echo": lambda x=None: x,
    "add": add,
    "pid": os.getpid,
    "legacy.call": legacy_call,
}


# --- Serving ------------------------------------------------------------------

def answer(msgid, method, params):
    fn = METHODS.get(method.decode() if isinstance(method, bytes) else method)
    try:
        if fn is None:
            raise RpcError("METHOD_NOT_FOUND", f"Cannot call {method}: no such method")
        return pack([1, msgid, None, fn(*params)])
    except RpcError as err:
        return pack([1, msgid, {"code": err.code, "message": str(err)}, None])
    except Exception as err:  # a bug in a method answers its request only
        return pack([1, msgid, {"code": "HANDLER_ERROR", "message": str(err)}, None])


async def serve_connection(reader, writer, stop):
    buf = b""
    while not stop.is_set():
        chunk = await reader.read(65536)
        if not chunk:
            break
        buf += chunk
        pos = 0
        try:
            while pos < len(buf):
                message, pos = unpack(buf, pos)
                if message[0] == 0:  # [0, msgid, method, params]
                    writer.write(answer(message[1], message[2], message[3]))
                elif message[0] == 2 and message[1] in ("shutdown", b"shutdown"):
                    stop.set()  # finish what was read, then exit
        except Incomplete:
            pass
        buf = buf[pos:] if pos < len(buf) else b""
        await writer.drain()
    writer.close()


async def watch_parent(stop):
    """The proxy holds our stdin; when it closes, the proxy is gone."""
    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        return  # started by hand: nobody to watch
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass
    stop.set()


async def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ["PROXY_WORKER_SOCKET"]
    stop = asyncio.Event()
    server = await asyncio.start_unix_server(
        lambda r, w: serve_connection(r, w, stop), path=path)
    # The proxy logs each line a worker prints (scripts wait for the proxy's
    # own "listening on" line: a worker says something else).
    print(f"python worker {os.getpid()} serving {path}", file=sys.stderr, flush=True)
    watcher = asyncio.create_task(watch_parent(stop))
    await stop.wait()
    watcher.cancel()
    server.close()
    if os.path.exists(path):
        os.unlink(path)


if __name__ == "__main__":
    asyncio.run(main())
