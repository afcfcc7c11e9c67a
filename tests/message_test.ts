import assert from "node:assert/strict";
import {
  ErrorCode,
  errorToWire,
  ProxyError,
  RemoteError,
  toWireError,
} from "../lib/protocol/errors.ts";
import {
  decodeMessage,
  encodeError,
  encodeNotification,
  encodeRequest,
  encodeResult,
  InvalidMessageError,
  NOTIFICATION,
  REQUEST,
  RESPONSE,
} from "../lib/protocol/message.ts";
import { decodeValue } from "../lib/protocol/decode.ts";
import { encodeValue } from "../lib/protocol/encode.ts";

const unpack = (bytes: Uint8Array) => decodeValue(bytes);
const pack = (value: unknown) => encodeValue(value);

const PARAMS = [
  1,
  -2,
  3.5,
  "str",
  null,
  true,
  [1, [2]],
  { a: { b: "c" } },
  new Uint8Array([0, 255]),
];

Deno.test("encodeRequest() writes [0, msgid, method, params] that decodeMessage() reads back", () => {
  const frame = encodeRequest(7, "echo", PARAMS);
  const raw = unpack(frame) as unknown[];
  assert.deepEqual(raw.slice(0, 3), [REQUEST, 7, "echo"]);
  assert.equal((raw[3] as unknown[]).length, PARAMS.length);
  assert.deepEqual(decodeMessage(frame), {
    type: REQUEST,
    msgid: 7,
    method: "echo",
    params: PARAMS,
  });
});

Deno.test("encodeResult() writes [1, msgid, nil, result] and turns undefined into nil", () => {
  assert.deepEqual(unpack(encodeResult(3, { ok: [1, 2] })), [RESPONSE, 3, null, { ok: [1, 2] }]);
  assert.deepEqual(unpack(encodeResult(4, undefined)), [RESPONSE, 4, null, null]);
  assert.deepEqual(decodeMessage(encodeResult(5, "r")), {
    type: RESPONSE,
    msgid: 5,
    error: null,
    result: "r",
  });
});

Deno.test("encodeError() writes [1, msgid, error, nil] with the wire error map", () => {
  const wire = { code: ErrorCode.TIMEOUT, message: "Cannot answer", data: { ms: 5 } };
  assert.deepEqual(unpack(encodeError(9, wire)), [RESPONSE, 9, wire, null]);
  assert.deepEqual(decodeMessage(encodeError(9, wire)), {
    type: RESPONSE,
    msgid: 9,
    error: wire,
    result: null,
  });
});

Deno.test("encodeNotification() writes [2, method, params] that decodeMessage() reads back", () => {
  const frame = encodeNotification("shutdown", []);
  assert.deepEqual(unpack(frame), [NOTIFICATION, "shutdown", []]);
  assert.deepEqual(decodeMessage(frame), { type: NOTIFICATION, method: "shutdown", params: [] });
});

Deno.test("encodeValue() writes integers beyond 32 bits as int64/uint64 and decodes them exactly", () => {
  const value = { list: [1, 2], nested: { n: 2 ** 40 }, neg: -(2 ** 33), s: "é" };
  const bytes = encodeValue(value);
  assert.deepEqual(decodeValue(bytes), value);
  assert.deepEqual(Array.from(encodeValue(2 ** 40)), [0xcf, 0, 0, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(encodeValue(-(2 ** 33))), [0xd3, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0]);
  assert.equal(decodeValue(pack(2n ** 60n)), 2n ** 60n);
  assert.equal(decodeValue(pack(2n ** 52n)), 2 ** 52, "a safe integer decodes as a number");
});

Deno.test("decodeValue() returns binary that does not alias the input buffer", () => {
  const bytes = encodeValue(new Uint8Array([1, 2, 3]));
  const value = decodeValue(bytes) as Uint8Array;
  bytes.fill(0);
  assert.deepEqual(Array.from(value), [1, 2, 3]);
});

Deno.test("decodeValue() and decodeMessage() throw PARSE_ERROR for truncated MessagePack", () => {
  const truncated = encodeRequest(1, "echo", ["hello world"]).subarray(0, 10);
  assert.throws(() => decodeValue(truncated), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, ErrorCode.PARSE_ERROR);
    assert.match(err.message, /^Cannot decode MessagePack: /);
    return true;
  });
  assert.throws(() => decodeMessage(truncated), (err: unknown) => {
    assert.ok(err instanceof InvalidMessageError);
    assert.equal(err.code, ErrorCode.PARSE_ERROR);
    assert.equal(err.msgid, 1, "the envelope was whole: its msgid can be answered");
    return true;
  });
});

const validateMessage = (value: unknown) => decodeMessage(pack(value));

Deno.test("decodeMessage() accepts every valid shape, including extreme msgids", () => {
  for (const msgid of [0, 1, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER, -1, Number.MIN_SAFE_INTEGER]) {
    assert.deepEqual(validateMessage([0, msgid, "m", []]), {
      type: REQUEST,
      msgid,
      method: "m",
      params: [],
    });
    assert.deepEqual(validateMessage([1, msgid, null, null]), {
      type: RESPONSE,
      msgid,
      error: null,
      result: null,
    });
  }
  assert.deepEqual(validateMessage([2, "", [1]]), { type: NOTIFICATION, method: "", params: [1] });
});

/** Asserts decodeMessage() rejects `value` with INVALID_REQUEST and `msgid`. */
function assertRejected(value: unknown, msgid: number | bigint | undefined, pattern: RegExp): void {
  assert.throws(
    () => validateMessage(value),
    (err: unknown) => {
      assert.ok(err instanceof InvalidMessageError, String(err));
      assert.equal(err.name, "InvalidMessageError");
      assert.equal(err.code, ErrorCode.INVALID_REQUEST);
      assert.equal(err.msgid, msgid, `msgid for ${Deno.inspect(value)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

Deno.test("decodeMessage() rejects values that are not arrays", () => {
  for (const value of [null, 0, "0", { 0: 0, 1: 1, 2: "m", 3: [] }, true]) {
    assertRejected(value, undefined, /not an array/);
  }
});

Deno.test("decodeMessage() rejects unknown type tags", () => {
  for (
    const value of [[], [3, 1, "m", []], [-1, 1, "m", []], ["0", 1, "m", []], [null, 1, "m", []]]
  ) {
    assertRejected(value, undefined, /unknown type tag/);
  }
});

Deno.test("decodeMessage() rejects malformed requests, with the msgid when it is valid", () => {
  assertRejected([0, 5, "m"], 5, /expected 4 elements, got 3/);
  assertRejected([0, 5, "m", [], 1], 5, /expected 4 elements, got 5/);
  assertRejected([0, 5.5, "m"], undefined, /expected 4 elements/);
  assertRejected([0, 1.5, "m", []], undefined, /msgid is not an integer/);
  assertRejected([0, "1", "m", []], undefined, /msgid is not an integer/);
  assertRejected([0, null, "m", []], undefined, /msgid is not an integer/);
  // An integer msgid beyond 2^53 is refused, and echoed exactly so the answer reaches its sender.
  assertRejected([0, 2n ** 53n, "m", []], 2n ** 53n, /msgid 9007199254740992 is beyond 2\^53/);
  assertRejected([0, 2n ** 64n - 1n, "m", []], 2n ** 64n - 1n, /beyond 2\^53/);
  assertRejected([0, 5, 1, []], 5, /method is not a string/);
  assertRejected([0, 5, null, []], 5, /method is not a string/);
  assertRejected([0, 5, "m", {}], 5, /params is not an array/);
  assertRejected([0, 5, "m", null], 5, /params is not an array/);
  assertRejected([0, 5, "m", "a"], 5, /params is not an array/);
});

Deno.test("decodeMessage() rejects malformed responses", () => {
  assertRejected([1, 5, null], undefined, /expected 4 elements, got 3/);
  assertRejected([1, 5, null, 1, 2], undefined, /expected 4 elements, got 5/);
  assertRejected([1, "5", null, 1], undefined, /msgid is not an integer/);
  assertRejected([1, 0.5, null, 1], undefined, /msgid is not an integer/);
});

Deno.test("decodeMessage() rejects malformed notifications", () => {
  assertRejected([2, "n"], undefined, /expected 3 elements, got 2/);
  assertRejected([2, "n", [], 1], undefined, /expected 3 elements, got 4/);
  assertRejected([2, 1, []], undefined, /method is not a string/);
  assertRejected([2, "n", {}], undefined, /params is not an array/);
});

Deno.test("ProxyError carries its code, data and cause, and toWire() omits absent data", () => {
  const cause = new Error("root");
  const err = new ProxyError(ErrorCode.WORKER_EXITED, "Cannot answer: worker exited", {
    data: { stderr: ["boom"] },
    cause,
  });
  assert.equal(err.name, "ProxyError");
  assert.equal(err.code, "WORKER_EXITED");
  assert.equal(err.cause, cause);
  assert.deepEqual(err.toWire(), {
    code: "WORKER_EXITED",
    message: "Cannot answer: worker exited",
    data: { stderr: ["boom"] },
  });
  const plain = new ProxyError(ErrorCode.TIMEOUT, "late");
  assert.deepEqual(plain.toWire(), { code: "TIMEOUT", message: "late" });
  assert.ok(!("data" in plain.toWire()));
  assert.equal(plain.cause, undefined);
});

Deno.test("RemoteError keeps the remote's code, message and data", () => {
  const err = new RemoteError({ code: "CUSTOM", message: "m", data: [1] });
  assert.ok(err instanceof ProxyError);
  assert.equal(err.name, "RemoteError");
  assert.deepEqual([err.code, err.message, err.data], ["CUSTOM", "m", [1]]);
  assert.deepEqual(new RemoteError({ code: "C", message: "m" }).toWire(), {
    code: "C",
    message: "m",
  });
});

Deno.test("toWireError() keeps a well-formed wire error as it is", () => {
  assert.deepEqual(toWireError({ code: "X", message: "m" }), { code: "X", message: "m" });
  assert.deepEqual(toWireError({ code: "X", message: "m", data: { d: 1 } }), {
    code: "X",
    message: "m",
    data: { d: 1 },
  });
});

Deno.test("toWireError() normalises any other error slot to REMOTE_ERROR with a message", () => {
  assert.deepEqual(toWireError("plain text"), { code: "REMOTE_ERROR", message: "plain text" });
  assert.deepEqual(toWireError(42), { code: "REMOTE_ERROR", message: "42" });
  assert.deepEqual(toWireError(true), { code: "REMOTE_ERROR", message: "true" });
  assert.deepEqual(toWireError([1, "x", 2]), { code: "REMOTE_ERROR", message: '[1,"x",2]' });
  assert.deepEqual(toWireError({ message: "no code" }), {
    code: "REMOTE_ERROR",
    message: "no code",
  });
  assert.deepEqual(toWireError({ code: 5, message: "numeric code" }), {
    code: "REMOTE_ERROR",
    message: "numeric code",
  });
  assert.deepEqual(toWireError({ code: "X", detail: 1 }), {
    code: "X",
    message: '{"code":"X","detail":1}',
  });
});

Deno.test("errorToWire() keeps a ProxyError's code and makes anything else HANDLER_ERROR", () => {
  assert.deepEqual(errorToWire(new ProxyError(ErrorCode.INVALID_PARAMS, "bad", { data: 1 })), {
    code: "INVALID_PARAMS",
    message: "bad",
    data: 1,
  });
  assert.deepEqual(errorToWire(new TypeError("wrong type")), {
    code: "HANDLER_ERROR",
    message: "wrong type",
  });
  assert.deepEqual(errorToWire("thrown string"), {
    code: "HANDLER_ERROR",
    message: "thrown string",
  });
  assert.deepEqual(errorToWire(undefined), { code: "HANDLER_ERROR", message: "undefined" });
  // Another copy of the class (a handler under the npm package's bundle) counts by its name.
  class ProxyErrorCopy extends Error {
    override name = "ProxyError";
    code = "NOT_FOUND";
    data = { id: 7 };
  }
  assert.deepEqual(errorToWire(new ProxyErrorCopy("no such user")), {
    code: "NOT_FOUND",
    message: "no such user",
    data: { id: 7 },
  });
  // A system error's code is not a protocol error code.
  const enoent = Object.assign(new Error("no file"), { code: "ENOENT" });
  assert.deepEqual(errorToWire(enoent), { code: "HANDLER_ERROR", message: "no file" });
});

Deno.test("toWireError() reads [code, message] arrays (Neovim, pynvim, --error-format array)", () => {
  assert.deepEqual(toWireError(["QUEUE_FULL", "busy"]), { code: "QUEUE_FULL", message: "busy" });
  assert.deepEqual(toWireError([0, "E5555: boom"]), {
    code: "REMOTE_ERROR",
    message: "E5555: boom",
    data: { type: 0 },
  });
});

Deno.test("encodeError() writes [code, message] in the array format", () => {
  const wire = { code: ErrorCode.TIMEOUT, message: "late", data: { ms: 5 } };
  assert.deepEqual(unpack(encodeError(9, wire, "array")), [RESPONSE, 9, ["TIMEOUT", "late"], null]);
  assert.deepEqual(unpack(encodeError(2n ** 60n, wire, "array")), [RESPONSE, 2n ** 60n, [
    "TIMEOUT",
    "late",
  ], null]);
});

Deno.test("decodeMessage() accepts method names sent as bin, as old MessagePack clients send them", () => {
  const name = new TextEncoder().encode("nvim_set_client_info");
  assert.deepEqual(decodeMessage(pack([0, 1, name, [1]])), {
    type: REQUEST,
    msgid: 1,
    method: "nvim_set_client_info",
    params: [1],
  });
  assert.deepEqual(decodeMessage(pack([2, name, []])), {
    type: NOTIFICATION,
    method: "nvim_set_client_info",
    params: [],
  });
  assertRejected([0, 3, new Uint8Array([0xff, 0xfe]), []], 3, /method is not valid UTF-8/);
});

Deno.test("ErrorCode values equal their names", () => {
  for (const [name, value] of Object.entries(ErrorCode)) assert.equal(value, name);
});
