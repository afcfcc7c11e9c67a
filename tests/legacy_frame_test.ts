import assert from "node:assert/strict";
import fc from "fast-check";
import { ErrorCode, ProxyError } from "../lib/protocol/errors.ts";
import {
  decodeLegacyHeader,
  encodeLegacyFrame,
  isLegacyPrefix,
  LEGACY_BODY_BINARY,
  LEGACY_BODY_JSON,
  LEGACY_ERR_ILLEGAL,
  LEGACY_ERR_ILLEGAL_TEXT,
  LEGACY_ERR_NO_USER,
  LEGACY_ERR_NO_USER_TEXT,
  LEGACY_ERR_UNKNOWN,
  LEGACY_ERR_UNKNOWN_TEXT,
  LEGACY_FUNC_PROXY,
  LEGACY_FUNC_USER,
  LEGACY_HEADER_SIZE,
  LEGACY_PROXY_REPLY,
  LEGACY_TAG,
  legacyErrorBody,
  type LegacyFrame,
  LegacyFrameDecoder,
  type LegacyHeader,
  replyHeaderFor,
} from "../lib/protocol/legacy_frame.ts";

import { concat, hex } from "./helpers/legacy.ts";
const enc = new TextEncoder();
const dec = new TextDecoder();

// Frames with their bodies copied (bodies are views into the decoder's buffer).
function drain(decoder: LegacyFrameDecoder, into: LegacyFrame[]): void {
  for (let f = decoder.next(); f !== null; f = decoder.next()) {
    into.push({ header: f.header, body: f.body.slice() });
  }
}

function catchError(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProxyError, `expected a ProxyError, got ${err}`);
    return err;
  }
  assert.fail("expected an error");
}

const RESERVED = "00".repeat(20);

// Vector 1: a JSON request to func 2000, flow 1, body "{}".
const V1_HEADER: LegacyHeader = {
  bodyType: LEGACY_BODY_JSON,
  msgType: 0,
  flowNo: 1,
  funcNo: 2000,
  errNo: 0,
  bodyLen: 2,
  originLen: 2,
};
const V1_BYTES = hex(
  "43 43 52 50 43" + // tag "CCRPC"
    "30" + // body_type '0'
    "00" + // msg_type 0
    "01 00 00 00" + // flow_no 1
    "d0 07 00 00" + // func_no 2000 = 0x07d0
    "00 00 00 00" + // err_no 0
    "02 00 00 00" + // body_len 2
    "02 00 00 00" + // origin_len 2
    RESERVED +
    "7b 7d", // body "{}"
);

// Vector 2: negative flow_no and err_no, binary body, origin_len differing from body_len.
const V2_HEADER: LegacyHeader = {
  bodyType: LEGACY_BODY_BINARY,
  msgType: 3,
  flowNo: -2,
  funcNo: 1000,
  errNo: -3,
  bodyLen: 5,
  originLen: 0x0a0b0c0d,
};
const V2_BYTES = hex(
  "43 43 52 50 43" + // tag
    "31" + // body_type '1'
    "03" + // msg_type 3
    "fe ff ff ff" + // flow_no -2
    "e8 03 00 00" + // func_no 1000 = 0x03e8
    "fd ff ff ff" + // err_no -3
    "05 00 00 00" + // body_len 5
    "0d 0c 0b 0a" + // origin_len 0x0a0b0c0d
    RESERVED +
    "68 65 6c 6c 6f", // body "hello"
);

// Vector 3 (header only): extreme values.
const V3_HEADER: LegacyHeader = {
  bodyType: LEGACY_BODY_JSON,
  msgType: 2,
  flowNo: 0x12345678,
  funcNo: 0xffffffff,
  errNo: -0x80000000,
  bodyLen: 0x01020304,
  originLen: 0xfffffffe,
};
const V3_BYTES = hex(
  "43 43 52 50 43" + // tag
    "30" + // body_type '0'
    "02" + // msg_type 2
    "78 56 34 12" + // flow_no 0x12345678
    "ff ff ff ff" + // func_no 0xffffffff
    "00 00 00 80" + // err_no INT32_MIN
    "04 03 02 01" + // body_len 0x01020304
    "fe ff ff ff" + // origin_len 0xfffffffe
    RESERVED,
);

Deno.test("legacy constants match the original protocol", () => {
  assert.deepEqual(LEGACY_TAG, enc.encode("CCRPC"));
  assert.equal(LEGACY_HEADER_SIZE, 47);
  assert.equal(V3_BYTES.length, 47);
  assert.equal(LEGACY_ERR_UNKNOWN, -1);
  assert.equal(LEGACY_ERR_UNKNOWN_TEXT, "unknow request");
  assert.equal(LEGACY_ERR_ILLEGAL, -2);
  assert.equal(LEGACY_ERR_ILLEGAL_TEXT, "illegal request");
  assert.equal(LEGACY_ERR_NO_USER, -3);
  assert.equal(LEGACY_ERR_NO_USER_TEXT, "input param invalid,can't find user id");
  assert.equal(LEGACY_FUNC_USER, 1000);
  assert.equal(LEGACY_FUNC_PROXY, 2000);
  assert.equal(LEGACY_BODY_JSON, "0".charCodeAt(0));
  assert.equal(LEGACY_BODY_BINARY, "1".charCodeAt(0));
});

Deno.test("encodeLegacyFrame() writes the header byte for byte, reserved bytes zero", () => {
  const { bodyLen: _b, originLen: _o, ...fields } = V1_HEADER;
  assert.deepEqual(encodeLegacyFrame(fields, enc.encode("{}")), V1_BYTES);
  assert.deepEqual(encodeLegacyFrame(V1_HEADER, enc.encode("{}")), V1_BYTES);
  assert.deepEqual(encodeLegacyFrame(V2_HEADER, enc.encode("hello")), V2_BYTES);
});

Deno.test("encodeLegacyFrame() defaults originLen to the body length", () => {
  const frame = encodeLegacyFrame(
    { bodyType: LEGACY_BODY_JSON, msgType: 0, flowNo: 3, funcNo: 1000, errNo: 0 },
    new Uint8Array(300),
  );
  assert.equal(frame.length, 347);
  assert.equal(decodeLegacyHeader(frame).bodyLen, 300);
  assert.equal(decodeLegacyHeader(frame).originLen, 300);
});

Deno.test("encodeLegacyFrame() rejects out-of-range fields and a wrong bodyLen", () => {
  const ok = { bodyType: LEGACY_BODY_JSON, msgType: 0, flowNo: 1, funcNo: 1, errNo: 0 };
  const body = new Uint8Array(2);
  for (
    const bad of [
      { ...ok, bodyType: 256 },
      { ...ok, msgType: -1 },
      { ...ok, flowNo: 0x80000000 },
      { ...ok, flowNo: -0x80000001 },
      { ...ok, flowNo: 1.5 },
      { ...ok, funcNo: -1 },
      { ...ok, funcNo: 0x100000000 },
      { ...ok, errNo: 0x80000000 },
      { ...ok, originLen: -1 },
      { ...ok, bodyLen: 3 },
    ]
  ) {
    assert.throws(() => encodeLegacyFrame(bad, body), RangeError, JSON.stringify(bad));
  }
  encodeLegacyFrame({ ...ok, flowNo: -0x80000000, errNo: 0x7fffffff, funcNo: 0xffffffff }, body);
});

Deno.test("decodeLegacyHeader() reads every field of hand-written headers", () => {
  assert.deepEqual(decodeLegacyHeader(V1_BYTES), V1_HEADER);
  assert.deepEqual(decodeLegacyHeader(V2_BYTES), V2_HEADER);
  assert.deepEqual(decodeLegacyHeader(V3_BYTES), V3_HEADER);
});

Deno.test("decodeLegacyHeader() reads a header at a non-zero byteOffset", () => {
  const backing = concat(new Uint8Array(13), V3_BYTES);
  assert.deepEqual(decodeLegacyHeader(backing.subarray(13)), V3_HEADER);
});

Deno.test("decodeLegacyHeader() ignores the reserved bytes", () => {
  const bytes = V3_BYTES.slice();
  bytes.fill(0xaa, 27, 47);
  assert.deepEqual(decodeLegacyHeader(bytes), V3_HEADER);
});

Deno.test("decodeLegacyHeader() throws INVALID_REQUEST on a wrong tag", () => {
  for (const i of [0, 1, 2, 3, 4]) {
    const bytes = V3_BYTES.slice();
    bytes[i] = 0x63; // 'c'
    assert.equal(catchError(() => decodeLegacyHeader(bytes)).code, ErrorCode.INVALID_REQUEST);
  }
});

Deno.test("decodeLegacyHeader() throws RangeError on fewer than 47 bytes", () => {
  assert.throws(() => decodeLegacyHeader(V3_BYTES.subarray(0, 46)), RangeError);
});

const headerArb = fc.record({
  bodyType: fc.integer({ min: 0, max: 0xff }),
  msgType: fc.integer({ min: 0, max: 0xff }),
  flowNo: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  funcNo: fc.integer({ min: 0, max: 0xffffffff }),
  errNo: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  originLen: fc.integer({ min: 0, max: 0xffffffff }),
});

Deno.test("encodeLegacyFrame() and decodeLegacyHeader() round-trip any header", () => {
  fc.assert(
    fc.property(headerArb, fc.uint8Array({ maxLength: 64 }), (fields, body) => {
      const frame = encodeLegacyFrame(fields, body);
      assert.deepEqual(decodeLegacyHeader(frame), { ...fields, bodyLen: body.length });
      assert.deepEqual(frame.subarray(LEGACY_HEADER_SIZE), body);
      assert.ok(frame.subarray(27, 47).every((b) => b === 0));
    }),
  );
});

Deno.test("LegacyFrameDecoder round-trips negative flowNo and errNo", () => {
  const decoder = new LegacyFrameDecoder();
  decoder.push(V2_BYTES);
  const frame = decoder.next();
  assert.ok(frame);
  assert.deepEqual(frame.header, V2_HEADER);
  assert.equal(dec.decode(frame.body), "hello");
  assert.equal(decoder.next(), null);
  assert.equal(decoder.buffered, 0);
});

Deno.test("LegacyFrameDecoder decodes a frame split at every byte position", () => {
  for (const bytes of [V1_BYTES, V2_BYTES]) {
    for (let i = 0; i <= bytes.length; i++) {
      const decoder = new LegacyFrameDecoder();
      const frames: LegacyFrame[] = [];
      decoder.push(bytes.subarray(0, i));
      drain(decoder, frames);
      assert.equal(frames.length, i === bytes.length ? 1 : 0, `split at ${i}`);
      assert.equal(decoder.pendingHeader() !== null, i >= LEGACY_HEADER_SIZE && i < bytes.length);
      decoder.push(bytes.subarray(i));
      drain(decoder, frames);
      assert.equal(frames.length, 1, `split at ${i}`);
      assert.deepEqual(frames[0]!.header, decodeLegacyHeader(bytes));
      assert.deepEqual(frames[0]!.body, bytes.subarray(LEGACY_HEADER_SIZE));
      assert.equal(decoder.buffered, 0);
    }
  }
});

Deno.test("LegacyFrameDecoder decodes a frame fed one byte at a time", () => {
  const decoder = new LegacyFrameDecoder({ readSize: 1 });
  const frames: LegacyFrame[] = [];
  for (const bytes of [V1_BYTES, V2_BYTES, V1_BYTES]) {
    for (let i = 0; i < bytes.length; i++) {
      decoder.push(bytes.subarray(i, i + 1));
      drain(decoder, frames);
    }
  }
  assert.deepEqual(frames.map((f) => f.header), [V1_HEADER, V2_HEADER, V1_HEADER]);
  assert.deepEqual(frames.map((f) => dec.decode(f.body)), ["{}", "hello", "{}"]);
});

Deno.test("LegacyFrameDecoder decodes two and three frames in one chunk", () => {
  const decoder = new LegacyFrameDecoder();
  const frames: LegacyFrame[] = [];
  decoder.push(concat(V1_BYTES, V2_BYTES));
  drain(decoder, frames);
  assert.deepEqual(frames.map((f) => f.header), [V1_HEADER, V2_HEADER]);
  decoder.push(concat(V2_BYTES, V1_BYTES, V2_BYTES));
  drain(decoder, frames);
  assert.deepEqual(frames.map((f) => f.header), [
    V1_HEADER,
    V2_HEADER,
    V2_HEADER,
    V1_HEADER,
    V2_HEADER,
  ]);
  assert.deepEqual(frames.map((f) => dec.decode(f.body)), ["{}", "hello", "hello", "{}", "hello"]);
  assert.equal(decoder.buffered, 0);
});

Deno.test("LegacyFrameDecoder decodes coalesced frames ending in a partial one", () => {
  const decoder = new LegacyFrameDecoder();
  const frames: LegacyFrame[] = [];
  const stream = concat(V1_BYTES, V2_BYTES, V1_BYTES);
  decoder.push(stream.subarray(0, V1_BYTES.length + V2_BYTES.length + 10));
  drain(decoder, frames);
  assert.equal(frames.length, 2);
  assert.equal(decoder.buffered, 10);
  assert.deepEqual(decoder.partial(), V1_BYTES.subarray(0, 10));
  decoder.push(stream.subarray(V1_BYTES.length + V2_BYTES.length + 10));
  drain(decoder, frames);
  assert.deepEqual(frames.map((f) => f.header), [V1_HEADER, V2_HEADER, V1_HEADER]);
});

Deno.test("LegacyFrameDecoder decodes any split of any frames (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(headerArb, fc.uint8Array({ maxLength: 200 })), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 20 }),
      (specs, sizes) => {
        const stream = concat(...specs.map(([h, b]) => encodeLegacyFrame(h, b)));
        const decoder = new LegacyFrameDecoder({ readSize: 16, maxMessageSize: 200 });
        const frames: LegacyFrame[] = [];
        let pos = 0;
        for (let i = 0; pos < stream.length; i++) {
          const region = decoder.reserve();
          const n = Math.min(sizes[i % sizes.length]!, region.length, stream.length - pos);
          region.set(stream.subarray(pos, pos + n));
          decoder.commit(n);
          pos += n;
          drain(decoder, frames);
        }
        assert.deepEqual(
          frames.map((f) => f.header),
          specs.map(([h, b]) => ({ ...h, bodyLen: b.length })),
        );
        assert.deepEqual(frames.map((f) => f.body), specs.map(([, b]) => b));
        assert.equal(decoder.buffered, 0);
      },
    ),
  );
});

Deno.test("LegacyFrameDecoder rejects an oversize body_len as soon as the header completes", () => {
  const max = 1024;
  const header = { ...V2_HEADER, flowNo: -77, bodyLen: max + 1, originLen: max + 1 };
  const bytes = encodeLegacyFrame(header, new Uint8Array(max + 1)).subarray(0, LEGACY_HEADER_SIZE);
  const decoder = new LegacyFrameDecoder({ maxMessageSize: max });
  for (let i = 0; i < LEGACY_HEADER_SIZE - 1; i++) {
    decoder.push(bytes.subarray(i, i + 1));
    assert.equal(decoder.next(), null);
    assert.equal(decoder.pendingHeader(), null);
  }
  decoder.push(bytes.subarray(LEGACY_HEADER_SIZE - 1)); // last header byte, no body yet
  const err = catchError(() => decoder.next());
  assert.equal(err.code, ErrorCode.MESSAGE_TOO_LARGE);
  assert.deepEqual(err.data, { limit: max, header });
  assert.deepEqual(decoder.pendingHeader(), header);
  assert.deepEqual(decoder.partial(), bytes);
  // Sticky: the same error on every later call, even after more bytes.
  assert.equal(catchError(() => decoder.next()), err);
  decoder.push(V1_BYTES);
  assert.equal(catchError(() => decoder.next()), err);
});

Deno.test("LegacyFrameDecoder accepts a body of exactly maxMessageSize", () => {
  const decoder = new LegacyFrameDecoder({ maxMessageSize: 5 });
  decoder.push(V2_BYTES);
  assert.deepEqual(decoder.next()?.header, V2_HEADER);
});

Deno.test("LegacyFrameDecoder rejects an oversize frame after good ones in the same chunk", () => {
  const big = encodeLegacyFrame({ ...V1_HEADER, bodyLen: 3, originLen: 3 }, enc.encode("abc"));
  const decoder = new LegacyFrameDecoder({ maxMessageSize: 2 });
  decoder.push(concat(V1_BYTES, big));
  assert.deepEqual(decoder.next()?.header, V1_HEADER);
  assert.equal(catchError(() => decoder.next()).code, ErrorCode.MESSAGE_TOO_LARGE);
  assert.equal(decoder.pendingHeader()?.bodyLen, 3);
});

Deno.test("LegacyFrameDecoder throws INVALID_REQUEST on the first wrong tag byte", () => {
  const decoder = new LegacyFrameDecoder();
  decoder.push(enc.encode("CC"));
  assert.equal(decoder.next(), null);
  decoder.push(enc.encode("X"));
  const err = catchError(() => decoder.next());
  assert.equal(err.code, ErrorCode.INVALID_REQUEST);
  assert.equal(catchError(() => decoder.next()), err);

  const http = new LegacyFrameDecoder();
  http.push(enc.encode("GET / HTTP/1.1\r\n"));
  assert.equal(catchError(() => http.next()).code, ErrorCode.INVALID_REQUEST);
});

Deno.test("LegacyFrameDecoder throws INVALID_REQUEST on a wrong tag after a good frame", () => {
  const bad = V1_BYTES.slice();
  bad[4] = 0x44; // "CCRPD"
  const decoder = new LegacyFrameDecoder();
  decoder.push(concat(V2_BYTES, bad));
  assert.deepEqual(decoder.next()?.header, V2_HEADER);
  assert.equal(catchError(() => decoder.next()).code, ErrorCode.INVALID_REQUEST);
});

Deno.test("LegacyFrameDecoder keeps its buffer bounded by header + limit + readSize", () => {
  const max = 1000;
  const readSize = 64;
  const frame = encodeLegacyFrame(
    { bodyType: LEGACY_BODY_BINARY, msgType: 0, flowNo: 1, funcNo: 1000, errNo: 0 },
    new Uint8Array(max).fill(7),
  );
  const stream = concat(frame, frame, frame, V1_BYTES, frame);
  const decoder = new LegacyFrameDecoder({ maxMessageSize: max, readSize });
  const frames: LegacyFrame[] = [];
  let largest = 0;
  for (let pos = 0; pos < stream.length;) {
    const region = decoder.reserve();
    largest = Math.max(largest, region.buffer.byteLength);
    const n = Math.min(region.length, 37, stream.length - pos);
    region.set(stream.subarray(pos, pos + n));
    decoder.commit(n);
    pos += n;
    drain(decoder, frames);
  }
  assert.equal(frames.length, 5);
  assert.ok(largest <= LEGACY_HEADER_SIZE + max + readSize, `buffer grew to ${largest}`);
});

Deno.test("LegacyFrameDecoder rejects invalid options", () => {
  assert.throws(() => new LegacyFrameDecoder({ maxMessageSize: 0 }), RangeError);
  assert.throws(() => new LegacyFrameDecoder({ readSize: 0 }), RangeError);
});

Deno.test("isLegacyPrefix() tells legacy clients from MessagePack-RPC ones", () => {
  assert.equal(isLegacyPrefix(new Uint8Array()), undefined);
  assert.equal(isLegacyPrefix(enc.encode("C")), true);
  assert.equal(isLegacyPrefix(enc.encode("CCR")), true);
  assert.equal(isLegacyPrefix(enc.encode("CCRPC")), true);
  assert.equal(isLegacyPrefix(V1_BYTES), true);
  assert.equal(isLegacyPrefix(new Uint8Array([0x94, 0x00, 0x01, 0xa1])), false);
  assert.equal(isLegacyPrefix(new Uint8Array([0xdc, 0x00, 0x10])), false);
  assert.equal(isLegacyPrefix(new Uint8Array([0xdd])), false);
  assert.equal(isLegacyPrefix(enc.encode("GET ")), false);
  assert.equal(isLegacyPrefix(enc.encode("CX")), false);
  assert.equal(isLegacyPrefix(enc.encode("CCRPX and more")), false);
  for (let b = 0x90; b <= 0x9f; b++) assert.equal(isLegacyPrefix(new Uint8Array([b])), false);
});

Deno.test("legacyErrorBody() reproduces the original error bodies byte for byte", () => {
  assert.equal(
    legacyErrorBody(LEGACY_ERR_UNKNOWN, LEGACY_ERR_UNKNOWN_TEXT),
    `{"errno": -1 ,"errmsg":"unknow request","result":""}`,
  );
  assert.equal(
    legacyErrorBody(LEGACY_ERR_ILLEGAL, LEGACY_ERR_ILLEGAL_TEXT),
    `{"errno": -2 ,"errmsg":"illegal request","result":""}`,
  );
  const noUser = legacyErrorBody(LEGACY_ERR_NO_USER, LEGACY_ERR_NO_USER_TEXT);
  assert.equal(
    noUser,
    `{"errno": -3 ,"errmsg":"input param invalid,can't find user id","result":""}`,
  );
  assert.deepEqual(
    enc.encode(legacyErrorBody(LEGACY_ERR_ILLEGAL, LEGACY_ERR_ILLEGAL_TEXT)),
    hex(
      "7b 22 65 72 72 6e 6f 22 3a 20 2d 32 20 2c" + // {"errno": -2 ,
        "22 65 72 72 6d 73 67 22 3a 22 69 6c 6c 65 67 61 6c 20 72 65 71 75 65 73 74 22 2c" + // "errmsg":"illegal request",
        "22 72 65 73 75 6c 74 22 3a 22 22 7d", // "result":""}
    ),
  );
  assert.deepEqual(JSON.parse(noUser), {
    errno: -3,
    errmsg: "input param invalid,can't find user id",
    result: "",
  });
});

Deno.test("legacyErrorBody() escapes a text so the body stays JSON", () => {
  const body = legacyErrorBody(-9, `a "quoted" \\ text`);
  assert.equal(body, `{"errno": -9 ,"errmsg":"a \\"quoted\\" \\\\ text","result":""}`);
  assert.equal(JSON.parse(body).errmsg, `a "quoted" \\ text`);
  assert.throws(() => legacyErrorBody(1.5, "x"), RangeError);
});

Deno.test("LEGACY_PROXY_REPLY is the original func 2000 body byte for byte", () => {
  assert.equal(
    LEGACY_PROXY_REPLY,
    `{"errno":0,"errmsg":"successful","result":"handle rpc function successful"}`,
  );
  assert.equal(enc.encode(LEGACY_PROXY_REPLY).length, 75);
});

Deno.test("replyHeaderFor() echoes the request and sets err_no and both lengths", () => {
  const body = enc.encode(legacyErrorBody(LEGACY_ERR_NO_USER, LEGACY_ERR_NO_USER_TEXT));
  const reply = replyHeaderFor(V2_HEADER, LEGACY_ERR_NO_USER, body.length);
  assert.deepEqual(reply, {
    bodyType: LEGACY_BODY_BINARY,
    msgType: 3,
    flowNo: -2,
    funcNo: 1000,
    errNo: -3,
    bodyLen: body.length,
    originLen: body.length,
  });
  const frame = encodeLegacyFrame(reply, body);
  assert.deepEqual(decodeLegacyHeader(frame), reply);
});
