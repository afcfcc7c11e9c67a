import assert from "node:assert/strict";
import { RequestQueue } from "../lib/dispatch/request_queue.ts";

interface Item {
  msgid: number;
  who: string;
}

function item(msgid: number, who = "a"): Item {
  return { msgid, who };
}

Deno.test("RequestQueue keeps FIFO order across growth and refuses entries beyond capacity", () => {
  const q = new RequestQueue<Item>(3000);
  for (let i = 0; i < 3000; i++) assert.ok(q.push(item(i)));
  assert.equal(q.push(item(3000)), false);
  assert.equal(q.length, 3000);
  for (let i = 0; i < 3000; i++) assert.equal(q.shift()!.msgid, i);
  assert.equal(q.shift(), undefined);
});

Deno.test("RequestQueue wraps around without losing order", () => {
  const q = new RequestQueue<Item>(4);
  const out: number[] = [];
  for (let i = 0; i < 20; i++) {
    q.push(item(i));
    if (i % 2 === 1) out.push(q.shift()!.msgid, q.shift()!.msgid);
  }
  assert.deepEqual(out, Array.from({ length: 20 }, (_, i) => i));
});

Deno.test("RequestQueue.remove() drops one requester's entries and keeps the others in order", () => {
  const q = new RequestQueue<Item>(10);
  for (let i = 0; i < 6; i++) q.push(item(i, i % 2 ? "other" : "a"), i === 4 ? "key:k" : undefined);
  const dropped = q.remove((x) => x.who === "other");
  assert.deepEqual(dropped.map((x) => x.msgid), [1, 3, 5]);
  assert.deepEqual([q.shift()!.msgid, q.shift()!.msgid, q.shift("key:k")!.msgid], [0, 2, 4]);
  assert.equal(q.length, 0);
});

Deno.test("RequestQueue with capacity 0 refuses everything", () => {
  const q = new RequestQueue<Item>(0);
  assert.equal(q.push(item(1)), false);
  assert.throws(() => new RequestQueue(-1), RangeError);
});

Deno.test("RequestQueue keeps pinned calls apart, under one capacity", () => {
  const q = new RequestQueue<Item>(3);
  assert.ok(q.push(item(1), "key:a"));
  assert.ok(q.push(item(2)));
  assert.ok(q.push(item(3), "key:b"));
  assert.equal(q.push(item(4), "key:a"), false, "the capacity counts every pin");
  assert.deepEqual([q.lengthOf("key:a"), q.lengthOf(), q.lengthOf("key:b")], [1, 1, 1]);
  assert.deepEqual(q.pins().sort(), ["key:a", "key:b"]);
  assert.equal(q.shift()!.msgid, 2, "unpinned calls do not wait behind pinned ones");
  assert.deepEqual(q.expire((x) => x.msgid === 1).map((x) => x.msgid), [1]);
  assert.deepEqual(q.pins(), ["key:b"]);
});
