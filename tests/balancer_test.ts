import assert from "node:assert/strict";
import { pickLeastInFlight } from "../lib/balancer/least_in_flight.ts";

Deno.test("pickLeastInFlight() picks the worker with the fewest requests in flight", () => {
  const workers = [{ inFlight: 3, served: 0 }, { inFlight: 1, served: 50 }, {
    inFlight: 2,
    served: 0,
  }];
  assert.equal(pickLeastInFlight(workers, 10), 1);
});

Deno.test("pickLeastInFlight() returns -1 when every worker is at the limit or there is none", () => {
  assert.equal(pickLeastInFlight([{ inFlight: 4, served: 0 }, { inFlight: 5, served: 0 }], 4), -1);
  assert.equal(pickLeastInFlight([], 4), -1);
});

Deno.test("pickLeastInFlight() breaks ties between two random picks by fewer served", () => {
  const workers = [{ inFlight: 0, served: 9 }, { inFlight: 0, served: 2 }, {
    inFlight: 1,
    served: 0,
  }];
  // Two tied: whichever is drawn first, the other is the second pick, and the one with fewer served wins.
  for (const r of [0, 0.3, 0.6, 0.99]) assert.equal(pickLeastInFlight(workers, 8, () => r), 1);
});

Deno.test("pickLeastInFlight() spreads ties over all tied workers", () => {
  const workers = Array.from({ length: 8 }, () => ({ inFlight: 0, served: 0 }));
  const seen = new Set<number>();
  let seed = 1;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < 500; i++) seen.add(pickLeastInFlight(workers, 4, random));
  assert.equal(seen.size, 8);
});
