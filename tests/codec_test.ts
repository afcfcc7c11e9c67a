/**
 * The MessagePack codec against an encoder nobody here wrote (Python's
 * msgpack), and its rules for what JavaScript cannot say by itself.
 */

import assert from "node:assert/strict";
import { decodeValue } from "../lib/protocol/decode.ts";
import { Encoder, encodeValue } from "../lib/protocol/encode.ts";
import { ErrorCode, ProxyError } from "../lib/protocol/errors.ts";
import { Ext, Float, RawString, Timestamp } from "../lib/protocol/values.ts";
import { pythonWith, runPython } from "./helpers/python.ts";
import { REPO_ROOT } from "./helpers/process.ts";

function bytes(hex: string): Uint8Array {
  return new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const roundTrip = (h: string) => hex(encodeValue(decodeValue(bytes(h))));

Deno.test("every vector Python's msgpack writes decodes and encodes back byte for byte", async () => {
  const python = await pythonWith("msgpack");
  const out = await runPython(python, [`${REPO_ROOT}/tests/testdata/msgpack_vectors.py`]);
  const vectors = out.trim().split("\n").map((l) => JSON.parse(l) as { name: string; hex: string });
  assert.ok(vectors.length > 150, `only ${vectors.length} vectors`);
  const wrong = vectors.filter((v) => roundTrip(v.hex) !== v.hex).map((v) => v.name);
  assert.deepEqual(wrong, []);
});

Deno.test("integers keep their family and exact value, 2^53 and beyond as bigint", () => {
  assert.equal(roundTrip("cf0000010000000000"), "cf0000010000000000", "2^40 stays uint64");
  assert.equal(decodeValue(bytes("cf0000010000000000")), 2 ** 40);
  for (
    const [h, v] of [
      ["cf7fffffffffffffff", 2n ** 63n - 1n],
      ["d38000000000000000", -(2n ** 63n)],
      ["cfffffffffffffffff", 2n ** 64n - 1n],
      ["cf0020000000000000", 2n ** 53n],
    ] as const
  ) {
    assert.equal(decodeValue(bytes(h)), v);
    assert.equal(hex(encodeValue(v)), h);
  }
  assert.equal(hex(encodeValue(5n)), "05", "a small bigint takes the shortest form");
  assert.throws(() => encodeValue(2n ** 64n), TypeError);
  assert.throws(() => encodeValue(-(2n ** 63n) - 1n), TypeError);
});

Deno.test("floats stay floats, a whole one as Float, -0 and NaN included", () => {
  assert.equal(roundTrip("cb3ff0000000000000"), "cb3ff0000000000000", "1.0 is no integer");
  assert.deepEqual(decodeValue(bytes("cb3ff0000000000000")), new Float(1));
  assert.equal(decodeValue(bytes("cb3ff8000000000000")), 1.5);
  assert.equal(roundTrip("cb8000000000000000"), "cb8000000000000000", "-0.0");
  assert.equal(roundTrip("cb7ff8000000000000"), "cb7ff8000000000000", "NaN");
  assert.equal(hex(encodeValue(new Float(2))), "cb4000000000000000");
  assert.equal(hex(encodeValue(2)), "02");
  // A float32 keeps its value (sent back as float64).
  assert.deepEqual(decodeValue(bytes("ca3fc00000")), 1.5);
  assert.equal(Number(new Float(3)) + 1, 4, "a Float works as a number");
});

Deno.test("timestamps round-trip exactly in all three forms", () => {
  for (
    const [h, s, ns] of [
      ["d6ff00000001", 1n, 0],
      ["d7ff0000001400000001", 1n, 5],
      ["c70cff000000010000000400000000", 2n ** 34n, 1],
      ["c70cff00000000ffffffffffffffff", -1n, 0],
    ] as const
  ) {
    const t = decodeValue(bytes(h)) as Timestamp;
    assert.ok(t instanceof Timestamp, h);
    assert.deepEqual([t.seconds, t.nanoseconds], [s, ns]);
    assert.equal(hex(encodeValue(t)), h);
  }
  assert.equal(
    hex(encodeValue(new Date(1500))),
    "d7ff7735940000000001",
    "the same bytes Python writes for Timestamp(1, 500000000)",
  );
  // A type -1 payload that is no timestamp is carried, not refused.
  const odd = decodeValue(bytes("d5ff0102"));
  assert.deepEqual(odd, new Ext(-1, new Uint8Array([1, 2])));
  assert.equal(hex(encodeValue(odd)), "d5ff0102");
});

Deno.test("unknown extensions, msgpackr's own among them, are carried as the same bytes", () => {
  for (
    const h of [
      "d40500",
      "d46500",
      "d5690102",
      "c703730a0b0c",
      "d8fe" + "00".repeat(16),
      "c880000100",
    ]
  ) {
    const padded = h.startsWith("c880") ? "c80100" + "80" + "ab".repeat(256) : h;
    const v = decodeValue(bytes(padded));
    assert.ok(v instanceof Ext, padded);
    assert.equal(hex(encodeValue(v)), padded);
  }
});

Deno.test("a __proto__ key stays an own key, and pollutes nothing", () => {
  const v = decodeValue(
    encodeValue(new Map<string, unknown>([["__proto__", { polluted: true }], ["x", 1]])),
  ) as Record<string, unknown>;
  assert.deepEqual(Object.keys(v), ["__proto__", "x"]);
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(
    hex(encodeValue(v)),
    hex(encodeValue(new Map<string, unknown>([["__proto__", { polluted: true }], ["x", 1]]))),
  );
});

Deno.test("maps with keys that are not strings decode as Map and keep their keys' types", () => {
  const h = hex(encodeValue(new Map<unknown, unknown>([[1, "a"], [[1, 2], "pair"], [null, 3]])));
  const m = decodeValue(bytes(h)) as Map<unknown, unknown>;
  assert.ok(m instanceof Map);
  assert.deepEqual([...m.keys()], [1, [1, 2], null]);
  assert.equal(roundTrip(h), h);
});

Deno.test("a str that is not UTF-8 is kept as its bytes", () => {
  const v = decodeValue(bytes("a261ff"));
  assert.ok(v instanceof RawString);
  assert.equal(roundTrip("a261ff"), "a261ff");
});

Deno.test("nesting beyond maxDepth is a PARSE_ERROR, decoding and encoding; cycles are refused", () => {
  const deep = new Uint8Array(10_001).fill(0x91);
  deep[10_000] = 0xc0;
  assert.throws(() => decodeValue(deep), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, ErrorCode.PARSE_ERROR);
    assert.match(err.message, /nested deeper than 512 levels/);
    return true;
  });
  assert.equal(decodeValue(deep.subarray(9_990), { maxDepth: 20 }) !== undefined, true);
  const cycle: unknown[] = [];
  cycle.push(cycle);
  assert.throws(() => encodeValue(cycle), TypeError);
  assert.throws(() => new Encoder({ maxDepth: 3 }).encode([[[[1]]]]), /deeper than 3/);
});

Deno.test("plain MessagePack only: what it cannot express is refused, not invented", () => {
  for (const v of [() => 1, Symbol("s"), new Set([1]), new Int32Array(2)]) {
    assert.throws(() => encodeValue(v), TypeError, String(v));
  }
  assert.equal(hex(encodeValue({ a: undefined, b: 1, f() {} })), "81a16201");
});

Deno.test("lengths beyond the input are refused before anything is allocated", () => {
  assert.throws(() => decodeValue(bytes("ddffffffff")), /items announced/);
  assert.throws(() => decodeValue(bytes("dfffffffff")), /items announced/);
  assert.throws(() => decodeValue(bytes("c6ffffffff")), /unexpected end/);
  assert.throws(() => decodeValue(bytes("0102")), /bytes after the end/);
  assert.throws(() => decodeValue(bytes("c1")), /0xc1 is not MessagePack/);
});
