/**
 * The str/bin header reader shared by the envelope and the routing key:
 * every header form, in a frame that is a view at an offset of its buffer.
 */

import assert from "node:assert/strict";
import { textSpan } from "../lib/protocol/_text_span.ts";
import { createEnvelope, encodeValue, readEnvelope, readRouteKey } from "../lib/protocol/mod.ts";

Deno.test("textSpan() finds the bytes of str 8/16/32 and bin 8/16/32 in a view at an offset", () => {
  const text = (n: number) => "k".repeat(n) + "é"; // not ASCII at the end
  for (const n of [0, 5, 31, 32, 255, 256, 65535, 65536]) {
    for (const value of [text(n), new TextEncoder().encode("x".repeat(n))]) {
      const bytes = encodeValue(value);
      const buffer = new Uint8Array(bytes.length + 7);
      buffer.set(bytes, 7);
      const frame = buffer.subarray(7);
      const span = { start: -1, end: -1 };
      assert.ok(textSpan(frame, 0, span));
      const want = typeof value === "string" ? new TextEncoder().encode(value) : value;
      assert.deepEqual(frame.subarray(span.start, span.end), want);
      assert.equal(span.end, frame.length);
      // Cut short by one byte: no span.
      assert.equal(textSpan(frame.subarray(0, frame.length - 1), 0, span), false);
    }
  }
  assert.equal(textSpan(encodeValue(7), 0, { start: 0, end: 0 }), false);
});

Deno.test("a long method name and a long routing key read through the shared header reader", () => {
  const method = "m".repeat(300); // str 16
  const key = "u".repeat(70_000); // str 32
  const frame = encodeValue([0, 1, method, [{ user_id: key }]]);
  const env = readEnvelope(frame, createEnvelope());
  assert.equal(env.method, method);
  assert.equal(readRouteKey(frame, env.body, ["user_id"]), key);
});
