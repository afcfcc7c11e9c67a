/**
 * Every balancing strategy against fake hosts: distribution, weights,
 * bounded load, and how few keys move when a host leaves.
 */

import assert from "node:assert/strict";
import type { Call } from "../lib/dispatch/call.ts";
import type { Host } from "../lib/dispatch/host.ts";
import { HashBalancer, maglevTable } from "../lib/dispatch/balancers/consistent_hash.ts";
import { BatchKeeping } from "../lib/dispatch/balancers/batch_keeping.ts";
import { EwmaBalancer } from "../lib/dispatch/balancers/ewma.ts";
import { LeastRequestBalancer } from "../lib/dispatch/balancers/least_request.ts";
import { RoundRobinBalancer } from "../lib/dispatch/balancers/round_robin.ts";

interface FakeHost extends Host {
  load: number;
  available: boolean;
  latencyMs: number;
  paceUs: number;
  warmth: number;
}

function host(id: number, options: Partial<FakeHost> = {}): FakeHost {
  return {
    id,
    label: `10.0.0.${id}:9000`,
    key: undefined,
    weight: 1,
    warmth: 1,
    load: 0,
    served: 0,
    latencyMs: 0,
    paceUs: 0,
    available: true,
    send() {},
    notify: () => true,
    ...options,
  };
}

const call = (key?: string) => ({ key } as Call);

// A seeded generator, so distributions are the same at every run.
function lcg(seed = 42): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

Deno.test("batch keeping: one read's requests stay on a quick host; a new read, a slow, full, unmeasured or far ahead host, a retry or no batch gets the inner pick, and a batch that finds a host idle is spread", () => {
  // Measured quick, each with a request of another client.
  const hosts = [host(1, { paceUs: 5, load: 1 }), host(2, { paceUs: 5, load: 1 })];
  // Least request inside: a kept pick shows against it (the kept host is not the least loaded).
  const keeping = new BatchKeeping(new LeastRequestBalancer(lcg()), { belowUs: 50, lead: 4 });
  const requester = { closed: false, batch: 1, deliver() {}, fail() {} };
  const pick = (options: { avoid?: Host; requester?: object } = {}) => {
    const call = { requester: options.requester ?? requester, avoid: options.avoid ?? null };
    const h = keeping.pick(hosts, call as unknown as Call) as FakeHost;
    h.load++;
    return h;
  };
  const first = pick();
  const other = hosts.find((h) => h !== first)!;
  assert.deepEqual([pick(), pick(), pick()], [first, first, first], "kept while quick");
  assert.equal(pick({ avoid: first }), other, "a retry: the inner pick");
  requester.batch = 2;
  assert.equal(pick(), other, "the next read: the least loaded");
  assert.equal(pick(), other);
  other.paceUs = 50;
  other.load = 10;
  assert.equal(pick(), first, "at the bound: each request picked on its own");
  other.paceUs = 0;
  requester.batch = 3;
  first.load = 1;
  other.load = 0;
  assert.equal(pick(), other);
  other.load = 10;
  assert.equal(pick(), first, "not measured yet: each request picked on its own");
  other.paceUs = 5;
  requester.batch = 4;
  const fourth = pick();
  fourth.available = false;
  assert.notEqual(pick(), fourth, "full: picked elsewhere");
  fourth.available = true;
  requester.batch = 5;
  for (const h of hosts) h.load = 0;
  const fifth = pick();
  assert.notEqual(pick(), fifth, "another host is idle: it takes the next request");
  pick();
  pick();
  assert.deepEqual(hosts.map((h) => h.load), [2, 2], "and the rest is spread: least request");
  // At most `lead` (4) requests ahead of the least loaded other host.
  requester.batch = 6;
  for (const h of hosts) h.load = 1;
  const sixth = pick();
  const run = [sixth, pick(), pick(), pick()];
  assert.deepEqual(run, [sixth, sixth, sixth, sixth], "kept up to the lead");
  assert.equal(sixth.load, 5);
  assert.notEqual(pick(), sixth, "4 ahead: picked afresh");
  for (const h of hosts) h.load = 1;
  const plain = { closed: false, deliver() {}, fail() {} };
  const a = pick({ requester: plain });
  assert.notEqual(pick({ requester: plain }), a, "no batches: least request");
});

Deno.test("round robin follows the weights exactly and smoothly", () => {
  const hosts = [host(1, { weight: 3 }), host(2, { weight: 1 }), host(3, { weight: 2 })];
  const rr = new RoundRobinBalancer();
  const picks = Array.from({ length: 12 }, () => rr.pick(hosts, call())!.id);
  assert.deepEqual(picks.filter((p) => p === 1).length, 6);
  assert.deepEqual(picks.filter((p) => p === 2).length, 2);
  assert.deepEqual(picks.filter((p) => p === 3).length, 4);
  assert.deepEqual(picks.slice(0, 6), [1, 3, 1, 2, 3, 1], "interleaved, not in runs");
  hosts[0]!.available = false;
  assert.ok(Array.from({ length: 6 }, () => rr.pick(hosts, call())!.id).every((id) => id !== 1));
});

Deno.test("least request divides load by weight and warmth", () => {
  const lr = new LeastRequestBalancer(lcg());
  assert.equal(lr.pick([host(1, { load: 4, weight: 4 }), host(2, { load: 2 })], call())!.id, 1);
  assert.equal(lr.pick([host(1, { load: 1, warmth: 0.1 }), host(2, { load: 3 })], call())!.id, 2);
});

Deno.test("peak EWMA prefers the faster host, and the less loaded among equals", () => {
  const ewma = new EwmaBalancer(lcg());
  const fast = host(1, { latencyMs: 1 });
  const slow = host(2, { latencyMs: 20 });
  const counts = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const id = ewma.pick([fast, slow], call())!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.equal(counts.get(1), 1000, "with two hosts both are drawn: the cheaper wins");
  fast.load = 50; // 1 x 51 > 20 x 1
  assert.equal(ewma.pick([fast, slow], call())!.id, 2);
  assert.equal(ewma.pick([host(3, { available: false })], call()), null);
});

Deno.test("hashing sends a key to the same host whatever order the hosts come in", () => {
  const hosts = [1, 2, 3, 4, 5].map((i) => host(i));
  const a = new HashBalancer();
  const b = new HashBalancer();
  for (let k = 0; k < 1000; k++) {
    const key = `user-${k}`;
    assert.equal(a.pick(hosts, call(key))!.id, b.pick([...hosts].reverse(), call(key))!.id, key);
  }
});

Deno.test("hashing spreads keys evenly, and by weight", () => {
  const count = (hosts: Host[], n = 20_000) => {
    const h = new HashBalancer();
    const c = new Map<number, number>();
    for (let k = 0; k < n; k++) {
      const id = h.pick(hosts, call(`key-${k}`))!.id;
      c.set(id, (c.get(id) ?? 0) + 1);
    }
    return c;
  };
  const even = count([1, 2, 3, 4].map((i) => host(i)));
  for (const n of even.values()) assert.ok(Math.abs(n - 5000) < 500, `${[...even.values()]}`);
  const weighted = count([host(1, { weight: 3 }), host(2), host(3)]);
  const share = weighted.get(1)! / 20_000;
  assert.ok(share > 0.55 && share < 0.65, `weight 3 of 5 took ${share}`);
});

Deno.test("when a host leaves, only its keys move (about 1/N of them)", () => {
  const n = 5;
  const hosts = Array.from({ length: n }, (_, i) => host(i + 1));
  const before = new HashBalancer();
  const after = new HashBalancer();
  const remaining = hosts.filter((h) => h.id !== 3);
  let moved = 0;
  let movedOthers = 0;
  const keys = 20_000;
  for (let k = 0; k < keys; k++) {
    const key = `k${k}`;
    const was = before.pick(hosts, call(key))!.id;
    const now = after.pick(remaining, call(key))!.id;
    if (was !== now) {
      moved++;
      if (was !== 3) movedOthers++;
    }
  }
  assert.ok(moved / keys <= 1 / n + 0.03, `moved ${moved / keys}`);
  assert.ok(movedOthers / keys <= 0.03, `keys of the other hosts moved: ${movedOthers / keys}`);
});

Deno.test("hashing with bounded load sends a key elsewhere only when its host is over the bound", () => {
  const hosts = [1, 2, 3, 4].map((i) => host(i));
  const strict = new HashBalancer();
  const bounded = new HashBalancer({ balanceFactor: 1.25 });
  const own = strict.pick(hosts, call("hot")) as FakeHost;
  assert.equal(bounded.pick(hosts, call("hot")), own, "under the bound: its own host");
  own.load = 10; // cap = ceil(1.25 * 11 / 4) = 4
  const other = bounded.pick(hosts, call("hot"))!;
  assert.notEqual(other, own);
  assert.ok(other.load < 4);
  assert.equal(strict.pick(hosts, call("hot")), own, "without a bound the key waits for its host");
  assert.throws(() => new HashBalancer({ balanceFactor: 0.5 }), RangeError);
});

Deno.test("the Maglev table fills every slot and depends only on the set of hosts", () => {
  const t1 = maglevTable([{ label: "a", weight: 1 }, { label: "b", weight: 1 }], 101);
  const t2 = maglevTable([{ label: "b", weight: 1 }, { label: "a", weight: 1 }], 101);
  assert.ok(!t1.includes(-1));
  // Indexes refer to each call's own order: compare labels.
  const labels1 = Array.from(t1, (i) => ["a", "b"][i]);
  const labels2 = Array.from(t2, (i) => ["b", "a"][i]);
  assert.deepEqual(labels1, labels2);
});
