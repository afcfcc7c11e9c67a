/**
 * The table of requests in flight: against a Map as the model, whatever the
 * order of adds and removals, every msgid finds exactly its value, msgids
 * are unique among those held, and the table grows and shrinks back.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { PendingTable } from "../lib/net/pending_table.ts";

Deno.test("PendingTable agrees with a Map under any order of adds and removals", () => {
  const op = fc.oneof(
    fc.record({ add: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ take: fc.nat() }), // the n-th held msgid, oldest first
    fc.record({ missing: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
    const table = new PendingTable<{ n: number }>(8);
    const model = new Map<number, { n: number }>();
    let n = 0;
    for (const o of ops) {
      if ("add" in o) {
        for (let i = 0; i < o.add; i++) {
          const value = { n: n++ };
          const id = table.add(value);
          assert.ok(!model.has(id), `msgid ${id} given twice while held`);
          model.set(id, value);
        }
      } else if ("take" in o) {
        if (model.size === 0) continue;
        const id = [...model.keys()][o.take % model.size]!;
        assert.equal(table.take(id), model.get(id));
        assert.equal(table.take(id), undefined, "taken twice");
        model.delete(id);
      } else if (!model.has(o.missing)) {
        assert.equal(table.get(o.missing), undefined);
        assert.equal(table.delete(o.missing), false);
      }
      assert.equal(table.size, model.size);
      assert.ok(table.size * 2 <= table.capacity, "more than half full");
      for (const [id, value] of model) assert.equal(table.get(id), value);
      assert.deepEqual(
        new Map(table.entries()),
        model,
        "entries() lists exactly what is held",
      );
    }
  }));
});

Deno.test("PendingTable gives increasing msgids, skipping a slot still held", () => {
  const table = new PendingTable<string>(8);
  const stuck = table.add("stuck"); // 0: never answered
  for (let i = 1; i < 8; i++) assert.equal(table.take(table.add(`r${i}`)), `r${i}`);
  // msgid 8 would share slot 0 with the stuck request: 9 is given instead.
  assert.equal(table.add("next"), 9);
  assert.equal(table.get(stuck), "stuck");
  assert.equal(table.get(8), undefined);
});

Deno.test("PendingTable wraps its msgids at 2^32 and returns to its size once empty", () => {
  const table = new PendingTable<number>(8);
  const ids: number[] = [];
  for (let i = 0; i < 1000; i++) ids.push(table.add(i));
  assert.ok(table.capacity >= 2000);
  for (const [i, id] of ids.entries()) assert.equal(table.take(id), i);
  assert.equal(table.size, 0);
  assert.equal(table.capacity, 8, "the burst's slots are given back");
  assert.deepEqual([...table.values()], []);

  // After 2^32-1 comes 0; a request still held at 0 is skipped.
  const wrap = new PendingTable<string>(8, 2 ** 32 - 2);
  assert.equal(wrap.add("a"), 2 ** 32 - 2);
  assert.equal(wrap.add("b"), 2 ** 32 - 1);
  assert.equal(wrap.add("c"), 0);
  assert.equal(wrap.take(2 ** 32 - 1), "b");
  assert.equal(wrap.get(2 ** 32 - 2), "a");
  assert.equal(wrap.get(0), "c");
});

Deno.test("PendingTable.clear() forgets everything", () => {
  const table = new PendingTable<string>(8);
  const ids = Array.from({ length: 100 }, (_, i) => table.add(`v${i}`));
  table.clear();
  assert.equal(table.size, 0);
  for (const id of ids) assert.equal(table.get(id), undefined);
  assert.equal(table.capacity, 8);
});

Deno.test("PendingTable entries() skips what the loop removes, clears or moves", () => {
  const table = new PendingTable<string>(8);
  const ids = Array.from({ length: 40 }, (_, i) => table.add(`v${i}`)); // grown past 64 slots
  // Cleared by the first visit (as Endpoint.sweep's callback may close the endpoint).
  const seen: string[] = [];
  for (const [, v] of table.entries()) {
    seen.push(v);
    table.clear();
  }
  assert.equal(seen.length, 1, "nothing after clear()");

  for (const id of ids) table.take(id);
  const held = Array.from({ length: 3 }, (_, i) => table.add(`w${i}`));
  // Removing the others while visiting the first: they are not visited.
  const visited: number[] = [];
  for (const [id] of table.entries()) {
    visited.push(id);
    for (const other of held) if (other !== id) table.delete(other);
  }
  assert.equal(visited.length, 1);

  // Growing while visiting: what is still held is visited once, with its value.
  const grow = new PendingTable<string>(8);
  const first = [grow.add("a"), grow.add("b"), grow.add("c")];
  const got = new Map<number, string>();
  for (const [id, v] of grow.entries()) {
    got.set(id, v);
    if (got.size === 1) { for (let i = 0; i < 20; i++) grow.add(`x${i}`); }
  }
  for (const id of first) assert.equal(got.get(id), grow.get(id));
});
