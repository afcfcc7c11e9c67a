import assert from "node:assert/strict";
import {
  createEnvelope,
  MAX_ENVELOPE_HEAD,
  peekRequestMsgid,
  readEnvelope,
  writeEnvelopeHead,
  writeInt,
} from "../lib/protocol/envelope.ts";
import { ErrorCode } from "../lib/protocol/errors.ts";
import {
  decodeMessage,
  InvalidMessageError,
  NOTIFICATION,
  REQUEST,
  RESPONSE,
} from "../lib/protocol/message.ts";

import { decodeValue } from "../lib/protocol/decode.ts";
import { encodeValue } from "../lib/protocol/encode.ts";

const pack = (value: unknown) => encodeValue(value);
const unpackr = { unpack: (bytes: Uint8Array) => decodeValue(bytes) };

const MSGIDS = [
  0,
  1,
  31,
  127,
  128,
  200,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 40 + 3,
  Number.MAX_SAFE_INTEGER,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  Number.MIN_SAFE_INTEGER,
];

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** Replaces the msgid of `frame` the way the proxy does. */
function withMsgid(frame: Uint8Array, msgid: number): Uint8Array {
  const env = readEnvelope(frame, createEnvelope());
  const out = new Uint8Array(MAX_ENVELOPE_HEAD + frame.length - env.tail);
  const off = writeEnvelopeHead(out, 0, env.type, msgid);
  assert.ok(off <= MAX_ENVELOPE_HEAD);
  out.set(frame.subarray(env.tail), off);
  return out.subarray(0, off + frame.length - env.tail);
}

Deno.test("readEnvelope() reads type, msgid and method of requests encoded by the codec", () => {
  for (const msgid of MSGIDS) {
    const env = readEnvelope(pack([0, msgid, "echo", ["x", 1]]), createEnvelope());
    assert.equal(env.type, REQUEST);
    assert.equal(env.msgid, msgid, `msgid ${msgid}`);
    assert.equal(env.method, "echo");
  }
});

Deno.test("readEnvelope() reads the msgid of responses encoded by the codec", () => {
  for (const msgid of MSGIDS) {
    const env = readEnvelope(pack([1, msgid, null, { big: "r".repeat(500) }]), createEnvelope());
    assert.equal(env.type, RESPONSE);
    assert.equal(env.msgid, msgid, `msgid ${msgid}`);
    assert.equal(env.method, "");
  }
});

Deno.test("readEnvelope() reads notifications with msgid -1", () => {
  const env = readEnvelope(pack([2, "shutdown", []]), createEnvelope());
  assert.deepEqual({ ...env }, {
    type: NOTIFICATION,
    msgid: -1,
    method: "shutdown",
    tail: 2,
    body: 11,
  });
});

Deno.test("readEnvelope() reads method names of every string format and non-ASCII ones", () => {
  for (
    const method of [
      "",
      "a",
      "x".repeat(31),
      "y".repeat(32),
      "z".repeat(300),
      "héllo",
      "日本語メソッド",
    ]
  ) {
    assert.equal(readEnvelope(pack([0, 1, method, []]), createEnvelope()).method, method);
    assert.equal(readEnvelope(pack([2, method, []]), createEnvelope()).method, method);
  }
});

Deno.test("readEnvelope() reuses and overwrites the envelope it is given", () => {
  const env = createEnvelope();
  assert.equal(readEnvelope(pack([0, 5, "ping", []]), env), env);
  readEnvelope(pack([1, 6, null, 1]), env);
  assert.deepEqual([env.type, env.msgid, env.method], [RESPONSE, 6, ""]);
  readEnvelope(pack([2, "n", []]), env);
  assert.deepEqual([env.type, env.msgid, env.method], [NOTIFICATION, -1, "n"]);
});

Deno.test("writeInt() writes non-negative and 32-bit integers exactly as the codec does", () => {
  for (const v of MSGIDS.filter((v) => v >= -(2 ** 31) && v <= 2 ** 32 - 1)) {
    const buf = new Uint8Array(16);
    const end = writeInt(buf, 3, v);
    assert.equal(hex(buf.subarray(3, end)), hex(pack(v)), `value ${v}`);
  }
});

Deno.test("writeInt() output decodes to the same integer for every msgid", () => {
  for (const v of MSGIDS) {
    const buf = new Uint8Array(9);
    const end = writeInt(buf, 0, v);
    assert.ok(end <= 9);
    assert.equal(unpackr.unpack(buf.subarray(0, end)), v, `value ${v}`);
  }
});

Deno.test("writeEnvelopeHead() followed by the tail round-trips through the codec for every msgid", () => {
  for (const msgid of MSGIDS) {
    const request = withMsgid(pack([0, 999, "sum", [1, 2, { a: [3] }]]), msgid);
    assert.deepEqual(unpackr.unpack(request), [0, msgid, "sum", [1, 2, { a: [3] }]]);
    const response = withMsgid(pack([1, 7, { code: "X", message: "m" }, null]), msgid);
    assert.deepEqual(unpackr.unpack(response), [1, msgid, { code: "X", message: "m" }, null]);
    assert.equal(readEnvelope(request, createEnvelope()).msgid, msgid);
  }
});

Deno.test("rewriting a request's msgid yields a frame decodeMessage reads with the same method and params", () => {
  const params = ["s".repeat(70), new Uint8Array([1, 2, 3]), -5, 1.25, null, [[]], { k: "v" }];
  for (const original of [0, 127, 128, 65536, 2 ** 32 - 1]) {
    for (const msgid of MSGIDS.filter((m) => m >= 0 && m <= 2 ** 32 - 1)) {
      const msg = decodeMessage(withMsgid(pack([0, original, "method.name", params]), msgid));
      assert.deepEqual(msg, { type: REQUEST, msgid, method: "method.name", params });
    }
  }
});

Deno.test("peekRequestMsgid() reads the msgid from the first bytes of a request", () => {
  for (const msgid of MSGIDS) {
    const frame = pack([0, msgid, "echo", ["p".repeat(100)]]);
    const headLength = 1 + 1 + pack(msgid).length;
    assert.equal(peekRequestMsgid(frame.subarray(0, headLength)), msgid, `msgid ${msgid}`);
    assert.equal(peekRequestMsgid(frame), msgid);
  }
});

Deno.test("peekRequestMsgid() returns undefined when the bytes do not start a request", () => {
  const cases: [string, Uint8Array][] = [
    ["too short", new Uint8Array([0x94, 0x00])],
    ["a response", pack([1, 5, null, 1])],
    ["a notification", pack([2, "n", []])],
    ["a 3-element array", pack([0, 5, "m"])],
    ["not an array", pack({ a: 1 })],
    ["a truncated uint32 msgid", new Uint8Array([0x94, 0x00, 0xce, 0x01, 0x02])],
    ["a string msgid", pack([0, "5", "m", []])],
  ];
  for (const [name, bytes] of cases) assert.equal(peekRequestMsgid(bytes), undefined, name);
});

/** Asserts readEnvelope() throws INVALID_REQUEST with `msgid`. */
function assertInvalid(frame: Uint8Array, msgid: number | undefined, name: string): void {
  assert.throws(
    () => readEnvelope(frame, createEnvelope()),
    (err: unknown) => {
      assert.ok(err instanceof InvalidMessageError, `${name}: ${err}`);
      assert.equal(err.code, ErrorCode.INVALID_REQUEST, name);
      assert.equal(err.msgid, msgid, `${name}: msgid`);
      assert.match(err.message, /^Cannot accept/);
      return true;
    },
    name,
  );
}

Deno.test("readEnvelope() throws INVALID_REQUEST with the msgid when the request is readable that far", () => {
  assertInvalid(pack([0, 42, "m"]), 42, "3-element request");
  assertInvalid(pack([0, 42, "m", [], "extra"]), 42, "5-element request");
  assertInvalid(pack([0, 42, 7, []]), 42, "non-string method");
  assertInvalid(pack([0, 42, null, []]), 42, "nil method");
  assertInvalid(pack([0, 42, "m", {}]), 42, "map params");
  assertInvalid(pack([0, 42, "m", "p"]), 42, "string params");
  assertInvalid(pack([0, 300, "m", null]), 300, "nil params");
});

Deno.test("readEnvelope() throws INVALID_REQUEST without a msgid when none can be read", () => {
  assertInvalid(pack({ type: 0 }), undefined, "a map");
  assertInvalid(pack("just a string"), undefined, "a string");
  assertInvalid(pack(7), undefined, "an integer");
  assertInvalid(pack([]), undefined, "an empty array");
  assertInvalid(pack([3, 1, "m", []]), undefined, "type tag 3");
  assertInvalid(pack(["0", 1, "m", []]), undefined, "string type tag");
  assertInvalid(pack([0, 1.5, "m", []]), undefined, "float msgid");
  assertInvalid(pack([0, "1", "m", []]), undefined, "string msgid");
  assertInvalid(pack([0, null, "m", []]), undefined, "nil msgid");
  assertInvalid(pack([1, 1.5, null, 1]), undefined, "response with float msgid");
  assertInvalid(pack([1, 1, null]), undefined, "3-element response (responses are not answered)");
  assertInvalid(pack([2, "n"]), undefined, "2-element notification");
  assertInvalid(pack([2, 5, []]), undefined, "notification with a non-string method");
  assertInvalid(pack([2, "n", "p"]), undefined, "notification with non-array params");
});

Deno.test("readEnvelope() refuses a float msgid, even a whole one, as decodeMessage() does", () => {
  // [0, 1.0, "m", []]: a float is no msgid, and cannot be echoed as one.
  const frame = new Uint8Array([0x94, 0x00, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xa1, 0x6d, 0x90]);
  assertInvalid(frame, undefined, "float64 msgid");
  assert.throws(() => decodeMessage(frame), { code: ErrorCode.INVALID_REQUEST, msgid: undefined });
});

Deno.test("readEnvelope() reads a method name sent as bin, in requests and notifications", () => {
  const name = new TextEncoder().encode("nvim_set_client_info");
  assert.equal(
    readEnvelope(pack([0, 1, name, []]), createEnvelope()).method,
    "nvim_set_client_info",
  );
  assert.equal(readEnvelope(pack([2, name, []]), createEnvelope()).method, "nvim_set_client_info");
});
