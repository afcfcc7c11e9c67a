"""Prints MessagePack test vectors made by Python's msgpack (an encoder nobody
here wrote): one JSON object per line, {"name": ..., "hex": ...}.

Every vector is in the canonical form msgpack.packb writes, so a codec that
decodes it and encodes it again must give back the same bytes."""
import json
import math
import sys

import msgpack
from msgpack import ExtType, Timestamp


def vectors():
    ints = [0, 1, 31, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
            2**40, 2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1,
            -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**32, -2**53 + 1,
            -2**53, -2**53 - 1, -2**63]
    for i in ints:
        yield f"int {i}", i
    for f in [0.0, -0.0, 1.0, -1.0, 1.5, -2.5, 0.1, 2.0**60, 2.0**53, 1e300, -1e-300,
              math.inf, -math.inf, math.nan, 9007199254740991.0]:
        yield f"float {f!r}", f
    yield "nil", None
    yield "true", True
    yield "false", False
    for n in [0, 1, 31, 32, 255, 256, 65535, 65536]:
        yield f"str ascii {n}", "a" * n
    yield "str unicode", "héllo wörld ✓ 日本語 🎉"
    yield "str unicode 40", "é" * 40
    for n in [0, 1, 255, 256, 65535, 65536]:
        yield f"bin {n}", bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    for n in [0, 15, 16, 65535, 65536]:
        yield f"array {n}", list(range(n % 100)) * (n // 100) + list(range(n % 100))
    yield "map str keys", {"a": 1, "b": [1, 2], "c": {"d": None}}
    yield "map 16 keys", {f"k{i}": i for i in range(16)}
    yield "map int keys", {1: "a", 2: "b", -3: "c"}
    yield "map mixed keys", {"a": 1, 2: "b", b"bin": 3, None: 4, 1.5: 5}
    yield "map array key", {(1, 2): "pair"}
    yield "map __proto__", {"__proto__": {"polluted": True}, "x": 1}
    yield "map constructor key", {"constructor": 1, "toString": 2, "hasOwnProperty": 3}
    yield "nested", [[[[[[[[[[{"deep": [1.5, -7, "x"]}]]]]]]]]]]
    yield "timestamp 32", Timestamp(1, 0)
    yield "timestamp 64", Timestamp(1, 5)
    yield "timestamp 64 max", Timestamp(2**34 - 1, 999999999)
    yield "timestamp 96 big", Timestamp(2**34, 1)
    yield "timestamp 96 negative", Timestamp(-1, 0)
    yield "timestamp 96 min", Timestamp(-2**63, 999999999)
    for t in [42, 0, 127, 0x65, 0x69, 0x73, 0x72, 0x74, 0x78, 0x05]:
        for n in [1, 2, 3, 4, 8, 16, 17, 255, 256, 70000]:
            yield f"ext {t} len {n}", ExtType(t, bytes([n % 251]) * n)
    yield "everything", {"ints": [2**64 - 1, -2**63, 2**40], "f": [1.0, 0.5], "t": Timestamp(1, 5),
                          "e": ExtType(7, b"\x01\x02\x03"), "b": b"\x00\xff", "s": "✓", "n": None}


def packb(value):
    return msgpack.packb(value, use_bin_type=True, datetime=False)


def main():
    for name, value in vectors():
        print(json.dumps({"name": name, "hex": packb(value).hex()}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
