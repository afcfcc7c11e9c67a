import assert from "node:assert/strict";
import { LeastRequestBalancer } from "../lib/dispatch/balancers/least_request.ts";
import type { Host } from "../lib/dispatch/host.ts";
import type { Call } from "../lib/dispatch/call.ts";

const CALL = {} as Call;

function host(id: number, load: number, served: number, available = true): Host {
  return {
    id,
    label: `h${id}`,
    key: undefined,
    weight: 1,
    warmth: 1,
    load,
    served,
    latencyMs: 0,
    paceUs: 0,
    available,
    send() {},
    notify: () => true,
  };
}

Deno.test("least request picks the host with the fewest requests in flight", () => {
  const hosts = [host(0, 3, 0), host(1, 1, 50), host(2, 2, 0)];
  assert.equal(new LeastRequestBalancer().pick(hosts, CALL)?.id, 1);
});

Deno.test("least request picks nothing when no host is available or there is none", () => {
  assert.equal(
    new LeastRequestBalancer().pick([host(0, 4, 0, false), host(1, 5, 0, false)], CALL),
    null,
  );
  assert.equal(new LeastRequestBalancer().pick([], CALL), null);
});

Deno.test("least request breaks ties between two random picks by fewer served", () => {
  const hosts = [host(0, 0, 9), host(1, 0, 2), host(2, 1, 0)];
  // Two tied: whichever is drawn first, the other is the second pick, and the one with fewer served wins.
  for (const r of [0, 0.3, 0.6, 0.99]) {
    assert.equal(new LeastRequestBalancer(() => r).pick(hosts, CALL)?.id, 1);
  }
});

Deno.test("least request spreads ties over all tied hosts", () => {
  const hosts = Array.from({ length: 8 }, (_, i) => host(i, 0, 0));
  const seen = new Set<number>();
  let seed = 1;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const balancer = new LeastRequestBalancer(random);
  for (let i = 0; i < 500; i++) seen.add(balancer.pick(hosts, CALL)!.id);
  assert.equal(seen.size, 8);
});
