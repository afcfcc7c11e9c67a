/**
 * Property: whatever a client sends (msgids negative and duplicated, methods
 * the workers know, do not know, or the proxy answers itself, params valid
 * or not), against a real proxy with a tiny queue, every request gets exactly
 * one answer with its own msgid, and once the client closes, its connection
 * is gone from `proxy.stats`.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeValue } from "../lib/protocol/mod.ts";
import { RawConnection } from "./helpers/raw_conn.ts";
import { startProxy } from "./helpers/proxy.ts";
import { eventually } from "./helpers/wait.ts";

type Response = [number, number, unknown, unknown];

// A request as bytes: params may be nested beyond the workers' depth limit.
const request = fc.record({
  msgid: fc.oneof(
    fc.integer({ min: -3, max: 3 }), // duplicates likely
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
  ),
  method: fc.constantFrom(
    "echo",
    "ping",
    "sleep",
    "no_such_method",
    "proxy.stats",
    "proxy.reload",
    "proxy.nope",
  ),
  params: fc.oneof(
    fc.constant("ok" as const),
    fc.constant("deep" as const),
    fc.constant("bigint" as const),
  ),
});

function frame(r: { msgid: number; method: string; params: "ok" | "deep" | "bigint" }): Uint8Array {
  if (r.params === "deep") {
    // [0, msgid, method, [[[[...]]]]] nested 2,000 levels.
    const head = encodeValue([0, r.msgid, r.method]);
    head[0] = 0x94;
    const nest = new Uint8Array(2001).fill(0x91);
    nest[2000] = 0xc0;
    const out = new Uint8Array(head.length + nest.length);
    out.set(head);
    out.set(nest, head.length);
    return out;
  }
  const param = r.method === "sleep" ? 5 : r.params === "bigint" ? 2n ** 64n - 1n : "x";
  return encodeValue([0, r.msgid, r.method, [param]]);
}

Deno.test("every request gets exactly one answer with its own msgid, and a closed client's connection is released", async () => {
  await using p = await startProxy([
    ...["--workers", "2", "--test-methods", "--max-in-flight-per-worker", "1"],
    ...["--queue-size", "2", "--queue-timeout", "50ms", "--request-timeout", "2s"],
  ]);
  await fc.assert(
    fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 40 }), async (requests) => {
      const sent = new Map<number, number>();
      {
        await using raw = await RawConnection.open(p.address);
        const bytes = requests.map(frame);
        const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
        let at = 0;
        for (const b of bytes) {
          all.set(b, at);
          at += b.length;
        }
        await raw.write(all);
        for (const r of requests) sent.set(r.msgid, (sent.get(r.msgid) ?? 0) + 1);
        const got = new Map<number, number>();
        for (let i = 0; i < requests.length; i++) {
          const answer = await raw.receive(5000) as Response | null;
          assert.ok(answer !== null, `connection closed after ${i} of ${requests.length} answers`);
          assert.equal(answer[0], 1);
          got.set(answer[1], (got.get(answer[1]) ?? 0) + 1);
        }
        assert.deepEqual(got, sent);
      }
      await eventually("connection released", async () => (await p.stats()).connections.open === 1);
    }),
    { numRuns: 25 },
  );
  assert.equal((await p.stats()).totals.worker_exits, 0, "no worker died of any of it");
});
