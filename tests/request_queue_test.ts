import assert from "node:assert/strict";
import type { Requester } from "../lib/dispatch/call.ts";
import { type QueuedRequest, RequestQueue } from "../lib/pool/request_queue.ts";

const requester: Requester = { closed: false, deliver() {}, fail() {} };

function item(msgid: number, who: Requester = requester): QueuedRequest {
  return { requester: who, msgid, method: "m", frame: new Uint8Array(), tail: 0, deadline: msgid };
}

Deno.test("RequestQueue keeps FIFO order across growth and refuses entries beyond capacity", () => {
  const q = new RequestQueue(3000);
  for (let i = 0; i < 3000; i++) assert.ok(q.push(item(i)));
  assert.equal(q.push(item(3000)), false);
  assert.equal(q.length, 3000);
  for (let i = 0; i < 3000; i++) assert.equal(q.shift()!.msgid, i);
  assert.equal(q.shift(), undefined);
});

Deno.test("RequestQueue wraps around without losing order", () => {
  const q = new RequestQueue(4);
  const out: number[] = [];
  for (let i = 0; i < 20; i++) {
    q.push(item(i));
    if (i % 2 === 1) out.push(q.shift()!.msgid, q.shift()!.msgid);
  }
  assert.deepEqual(out, Array.from({ length: 20 }, (_, i) => i));
});

Deno.test("RequestQueue.remove() drops one requester's entries and keeps the others in order", () => {
  const other: Requester = { closed: false, deliver() {}, fail() {} };
  const q = new RequestQueue(10);
  for (let i = 0; i < 6; i++) q.push(item(i, i % 2 ? other : requester));
  const dropped = q.remove((x) => x.requester === other);
  assert.deepEqual(dropped.map((x) => x.msgid), [1, 3, 5]);
  assert.deepEqual([q.shift()!.msgid, q.shift()!.msgid, q.shift()!.msgid], [0, 2, 4]);
});

Deno.test("RequestQueue with capacity 0 refuses everything", () => {
  const q = new RequestQueue(0);
  assert.equal(q.push(item(1)), false);
  assert.throws(() => new RequestQueue(-1), RangeError);
});
