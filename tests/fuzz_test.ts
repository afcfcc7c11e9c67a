/**
 * Fuzzing a real proxy: random bytes and mutated valid frames, MessagePack
 * and legacy, each on a connection of its own, while a healthy client on
 * another connection is answered every time, the workers never die, and the
 * connections all end.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { encodeLegacyFrame } from "../lib/protocol/legacy_frame.ts";
import { encodeValue, Ext, Timestamp } from "../lib/protocol/mod.ts";
import { connect } from "../lib/net/address.ts";
import { parseAddress } from "../lib/net/address.ts";
import { startProxy } from "./helpers/proxy.ts";
import { eventually } from "./helpers/wait.ts";

const SEEDS: Uint8Array[] = [
  encodeValue([0, 1, "echo", [{ a: [1, 2.5, "x"], b: new Uint8Array([1, 2]) }]]),
  encodeValue([0, 2, "echo", [2n ** 64n - 1n, -(2n ** 63n), new Timestamp(1, 5)]]),
  encodeValue([0, 3, "echo", [new Ext(42, new Uint8Array(20)), new Map([[1, 2]])]]),
  encodeValue([2, "notify", [1]]),
  encodeValue([0, 4, "proxy.stats", []]),
  encodeValue([0, 5, "ping", []]),
  encodeLegacyFrame(
    { bodyType: 0x30, msgType: 0, flowNo: 7, funcNo: 1000, errNo: 0 },
    new TextEncoder().encode('{"user_id":"u"}'),
  ),
];

// A seed frame with bytes flipped, cut, duplicated or inserted; or random bytes.
const input = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }),
  fc.record({
    seed: fc.integer({ min: 0, max: SEEDS.length - 1 }),
    edits: fc.array(
      fc.record({
        at: fc.nat(),
        kind: fc.constantFrom("flip", "cut", "insert", "repeat"),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  }).map(({ seed, edits }) => {
    let bytes = [...SEEDS[seed]!];
    for (const e of edits) {
      const at = e.at % (bytes.length || 1);
      if (e.kind === "flip") bytes[at] = e.byte;
      else if (e.kind === "cut") bytes = bytes.slice(0, at);
      else if (e.kind === "insert") bytes.splice(at, 0, e.byte);
      else bytes = [...bytes, ...bytes];
    }
    return new Uint8Array(bytes);
  }),
);

Deno.test("random and mutated frames hurt no other client and no worker", async () => {
  await using p = await startProxy([
    ...["--workers", "2", "--message-timeout", "300ms", "--first-byte-timeout", "300ms"],
  ]);
  const healthy = await RpcClient.connect(p.address);
  let calls = 0;
  const address = parseAddress(p.address);
  await fc.assert(
    fc.asyncProperty(input, async (bytes) => {
      const conn = await connect(address);
      try {
        let off = 0;
        while (off < bytes.length) off += await conn.write(bytes.subarray(off));
        // The healthy client is answered while the bad bytes are being dealt with.
        assert.equal(await healthy.call("echo", [calls], { timeout: 5000 }), calls);
        calls++;
        // The connection ends (answered and closed, or closed by a time limit)
        // or stays usable; either way it is closed here and must be released.
      } finally {
        conn.close();
      }
    }),
    { numRuns: 150 },
  );
  // Open: the stats client and the healthy one.
  await eventually("every fuzz connection released", async () => {
    return (await p.stats()).connections.open === 2;
  });
  const s = await p.stats();
  assert.equal(s.totals.worker_exits, 0, "no worker died");
  assert.equal(await healthy.call("ping"), "pong");
  healthy.close();
});
