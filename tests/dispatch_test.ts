/**
 * The dispatch layers' logic without processes or sockets: health rules,
 * ejection and panic, retry budget, crash loops, backoff and latency
 * averages with a fake clock; and the dispatcher against fake hosts.
 */

import assert from "node:assert/strict";
import { backoffDelay } from "../lib/dispatch/backoff.ts";
import { LeastRequestBalancer } from "../lib/dispatch/balancers/least_request.ts";
import { Call, type Requester } from "../lib/dispatch/call.ts";
import { CrashLoopGuard } from "../lib/dispatch/crash_loop.ts";
import { Dispatcher } from "../lib/dispatch/dispatcher.ts";
import type {
  EndpointSet,
  Placement,
  SetEvents,
  TrackedHost,
} from "../lib/dispatch/endpoint_set.ts";
import {
  ejectionAllowed,
  HealthCheckState,
  OutlierState,
  panicRouting,
} from "../lib/dispatch/health.ts";
import { PeakEwma } from "../lib/dispatch/peak_ewma.ts";
import { RetryBudget } from "../lib/dispatch/retry_budget.ts";
import { ServicePace } from "../lib/dispatch/service_pace.ts";
import { Endpoint } from "../lib/dispatch/endpoint.ts";
import { FrameDecoder } from "../lib/protocol/frame_decoder.ts";
import type { SetStats } from "../lib/dispatch/stats.ts";
import { parseUpstreamSpec } from "../lib/dispatch/upstream_spec.ts";
import {
  decodeValue,
  encodeRequest,
  encodeResult,
  requestTail,
  type WireError,
} from "../lib/protocol/mod.ts";
import { eventually } from "./helpers/wait.ts";

Deno.test("health checks: fall failures in a row make a host unhealthy, rise passes bring it back", () => {
  const h = new HealthCheckState(2, 3);
  assert.deepEqual([h.record(false), h.record(false), h.healthy], [false, false, true]);
  assert.equal(h.record(true), false, "a pass resets the run of failures");
  assert.deepEqual([h.record(false), h.record(false), h.record(false)], [false, false, true]);
  assert.equal(h.healthy, false);
  assert.deepEqual([h.record(true), h.record(true), h.healthy], [false, true, true]);
});

Deno.test("outlier ejection grows with each ejection, up to a cap, and successes reset failures", () => {
  const o = new OutlierState(3);
  assert.deepEqual([o.recordFailure(), o.recordFailure()], [false, false]);
  o.recordSuccess();
  assert.deepEqual([o.recordFailure(), o.recordFailure(), o.recordFailure()], [false, false, true]);
  assert.equal(o.eject(1000, 100, 250), 100);
  assert.ok(o.ejected(1050) && !o.ejected(1100));
  assert.equal(o.eject(2000, 100, 250), 200);
  assert.equal(o.eject(3000, 100, 250), 250, "capped");
  assert.equal(o.ejections, 3);
  o.release();
  assert.equal(o.ejected(3001), false);
});

Deno.test("at most a share of the set is ejected, and too few healthy means routing to all", () => {
  assert.equal(ejectionAllowed(0, 1, 0), true, "one may always go");
  assert.equal(ejectionAllowed(1, 10, 20), true);
  assert.equal(ejectionAllowed(2, 10, 20), false);
  assert.equal(panicRouting(0, 3, 50), true);
  assert.equal(panicRouting(2, 3, 50), false);
  assert.equal(panicRouting(0, 0, 50), false);
});

Deno.test("the retry budget allows a share of recent requests plus a floor per second", () => {
  let t = 0;
  const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 1, windowMs: 10_000, now: () => t });
  for (let i = 0; i < 100; i++) budget.deposit();
  // 10 (floor: 1/s over 10 s) + 0.1 x 100.
  const allowed = Array.from({ length: 30 }, () => budget.tryRetry()).filter(Boolean).length;
  assert.equal(allowed, 20);
  t = 20_000; // the window moved on: requests and retries are forgotten
  assert.equal(budget.tryRetry(), true);
});

Deno.test("a crash loop is threshold exits within the window, backoff doubles to a cap, EWMA peaks", () => {
  let t = 0;
  const guard = new CrashLoopGuard({ threshold: 3, windowMs: 1000, now: () => t });
  guard.record();
  t = 600;
  guard.record();
  t = 1100; // the first left the window
  assert.equal(guard.record(), false);
  t = 1200;
  assert.equal(guard.record(), true);
  assert.deepEqual([0, 1, 2, 3, 20].map((a) => backoffDelay(a, { baseMs: 10, capMs: 50 })), [
    10,
    20,
    40,
    50,
    50,
  ]);
  assert.equal(backoffDelay(3, { baseMs: 100, jitter: 0.5, random: () => 1 }), 400);
  const ewma = new PeakEwma({ decayMs: 1000, now: () => t });
  ewma.observe(5);
  ewma.observe(50);
  assert.equal(ewma.value, 50, "a slower answer is taken at once");
});

Deno.test("a host's pace is its busy time per answer: idle gaps do not count, a slower window counts at once", () => {
  let t = 0;
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-6;
  const pace = new ServicePace({ window: 4, now: () => t });
  assert.equal(pace.us, 0, "unmeasured");
  pace.sent();
  pace.sent();
  t = 0.1;
  pace.done();
  t = 0.2;
  pace.done(); // idle from here
  t = 50; // 50 ms with nothing to do
  pace.sent();
  pace.sent();
  t = 50.1;
  pace.done();
  assert.equal(pace.us, 0, "three answers: no full window yet");
  t = 50.2;
  pace.done();
  assert.ok(near(pace.us, 100), `0.4 ms busy over 4 answers: ${pace.us}`);
  // A slower window (1 ms per answer) is taken at once...
  for (let i = 0; i < 4; i++) pace.sent();
  for (let i = 0; i < 4; i++) {
    t += 1;
    pace.done();
  }
  assert.ok(near(pace.us, 1000), String(pace.us));
  // ...a faster one (10 us per answer) pulls it down by a quarter.
  for (let i = 0; i < 4; i++) pace.sent();
  for (let i = 0; i < 4; i++) {
    t += 0.01;
    pace.done();
  }
  assert.ok(near(pace.us, 1000 + (10 - 1000) / 4), String(pace.us));
  // Requests that end without answers (a broken connection) stop the clock.
  const broken = new ServicePace({ window: 1, now: () => t });
  broken.sent();
  t += 0.5;
  broken.done(false);
  broken.done(false); // more ends than requests: ignored
  assert.equal(broken.outstanding, 0);
  t += 100;
  broken.sent();
  t += 0.5;
  broken.done();
  assert.ok(near(broken.us, 1000), `1 ms busy, 100 ms idle not counted: ${broken.us}`);
});

Deno.test("an endpoint counts for its pace only real requests, and ends those cancelled or cut off", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pace-test-" });
  const path = `${dir}/peer.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const pace = new ServicePace({ window: 1 });
  const conn = await Deno.connect({ transport: "unix", path });
  const peer = await listener.accept();
  const endpoint = new Endpoint(conn, { label: "peer", pace });
  try {
    // The peer: reads requests, answers each one it is told to.
    const decoder = new FrameDecoder();
    const seen: unknown[][] = [];
    const buf = new Uint8Array(4096);
    const nextRequest = async () => {
      let frame: Uint8Array | null;
      while ((frame = decoder.next()) === null) {
        const n = await peer.read(buf);
        if (n === null) throw new Error("peer: closed");
        decoder.push(buf.subarray(0, n));
      }
      const message = decodeValue(frame) as unknown[];
      seen.push(message);
      return message;
    };
    const answer = (msgid: number) => peer.write(encodeResult(msgid, "ok"));
    const answered: number[] = [];
    const requester = (): Requester => ({
      closed: false,
      deliver: (msgid) => void answered.push(msgid),
      fail: () => {},
    });
    const call = (r: Requester, msgid: number) => {
      const frame = encodeRequest(msgid, "work", []);
      return new Call(r, msgid, "work", frame, requestTail(msgid), undefined);
    };
    // The proxy's own ping is not the host's work.
    const ping = endpoint.request("ping", [], 5000);
    assert.equal(pace.outstanding, 0, "a ping is not counted");
    const a = requester();
    endpoint.send(call(a, 1));
    assert.equal(pace.outstanding, 1);
    await answer((await nextRequest())[1] as number); // the ping
    await ping;
    assert.equal(pace.outstanding, 1, "the ping's answer ends nothing");
    await answer((await nextRequest())[1] as number);
    await eventually("the answer", () => Promise.resolve(answered.length === 1 || undefined));
    assert.equal(pace.outstanding, 0);
    assert.ok(pace.us > 0, "measured");
    // A requester that leaves: its untracked requests end at once.
    const b = requester();
    endpoint.send(call(b, 2));
    endpoint.cancelFor(b);
    assert.equal(pace.outstanding, 0, "cancelled");
    // A connection that closes ends what was in flight.
    endpoint.send(call(a, 3));
    assert.equal(pace.outstanding, 1);
    endpoint.close();
    await endpoint.done;
    assert.equal(pace.outstanding, 0, "cut off");
  } finally {
    endpoint.close();
    peer.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--upstream values parse, and bad ones say why", () => {
  assert.deepEqual(parseUpstreamSpec("tcp:10.0.0.1:9000,weight=3"), {
    kind: "static",
    address: { transport: "tcp", hostname: "10.0.0.1", port: 9000 },
    weight: 3,
    text: "tcp:10.0.0.1:9000,weight=3",
  });
  assert.equal(parseUpstreamSpec("unix:/run/w.sock").kind, "static");
  assert.deepEqual(parseUpstreamSpec("dns:backends.svc:9000"), {
    kind: "dns",
    name: "backends.svc",
    port: 9000,
    weight: 1,
    text: "dns:backends.svc:9000",
  });
  assert.equal(parseUpstreamSpec("srv:_rpc._tcp.backends.svc").kind, "srv");
  for (
    const bad of [
      "tcp:host",
      "dns:name",
      "srv:name",
      "srv:_a._tcp.b,weight=2",
      "h:1,weight=0",
      "h:0",
    ]
  ) {
    assert.throws(() => parseUpstreamSpec(bad), TypeError, bad);
  }
});

// ---- The dispatcher against fake hosts -------------------------------------

/** A host that answers only when told to. */
class FakeHost implements TrackedHost {
  readonly label: string;
  readonly key = undefined;
  readonly weight = 1;
  readonly warmth = 1;
  readonly latencyMs = 0;
  paceUs = 0;
  readonly pid = null;
  served = 0;
  maxInFlight = 1;
  calls: Call[] = [];
  overdue: Call[] = [];
  aborted: string[] = [];
  down = false;
  constructor(readonly id: number) {
    this.label = `fake ${id}`;
  }
  get inFlight() {
    return this.calls.length;
  }
  get load() {
    return this.calls.length + this.overdue.length;
  }
  get available() {
    return !this.down && this.load < this.maxInFlight;
  }
  send(call: Call) {
    call.attempts++;
    this.calls.push(call);
  }
  notify() {
    return true;
  }
  /** Answers the oldest call with `result`. */
  answer(result: unknown, events: SetEvents) {
    const call = this.calls.shift()!;
    const frame = encodeResult(0, result);
    call.requester.deliver(call.msgid, frame, requestTail(0));
    this.served++;
    events.onAnswer(this, call);
  }
  sweep(now: number, onTimeout: (call: Call) => void) {
    for (const c of [...this.calls]) {
      if (c.deadline !== 0 && c.deadline <= now) {
        this.calls.splice(this.calls.indexOf(c), 1);
        this.overdue.push(c);
        onTimeout(c);
      }
    }
    return [...this.overdue, ...this.calls][0];
  }
  cancelFor(r: Requester) {
    this.calls = this.calls.filter((c) => c.requester !== r);
  }
  abort(reason: string) {
    this.aborted.push(reason);
  }
  lastLines() {
    return [];
  }
}

class FakeSet implements EndpointSet {
  events!: SetEvents;
  constructor(readonly hosts: FakeHost[]) {}
  start(events: SetEvents) {
    this.events = events;
    return Promise.resolve();
  }
  place(): Placement {
    return { hosts: this.hosts };
  }
  sent() {}
  demand() {}
  live() {
    return this.hosts.length > 0;
  }
  unavailable(): WireError {
    return { code: "NO_WORKERS", message: "none" };
  }
  tracked() {
    return this.hosts;
  }
  housekeep() {}
  reload() {
    return Promise.resolve({ replaced: 0, failed: 0 });
  }
  refresh() {
    return Promise.resolve();
  }
  stats(): SetStats {
    return {
      socket_dir: null,
      workers: [],
      past_exits: [],
      upstreams: [],
      totals: { spawns: 0, crashes: 0, worker_exits: 0, recycles: 0 },
    };
  }
  close() {
    return Promise.resolve();
  }
}

class Recorder implements Requester {
  closed = false;
  got = new Map<number, unknown>();
  deliver(msgid: number) {
    this.got.set(msgid, "answered");
  }
  fail(msgid: number, error: WireError) {
    this.got.set(msgid, error.code);
  }
}

async function setUp(
  hosts: FakeHost[],
  options: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {},
) {
  let t = 1000;
  const set = new FakeSet(hosts);
  const d = new Dispatcher({
    set,
    balancer: new LeastRequestBalancer(() => 0),
    mode: "test",
    queueSize: 2,
    queueTimeout: 100,
    requestTimeout: 0,
    methodTimeouts: {},
    killAfter: 0,
    retry: [],
    housekeepingMs: 0,
    now: () => t,
    ...options,
  });
  await d.start();
  const r = new Recorder();
  const submit = (msgid: number, method = "m") =>
    d.submit(r, msgid, method, encodeRequest(msgid, method, []), requestTail(msgid));
  return { d, set, r, submit, advance: (ms: number) => (t += ms, d.housekeep()) };
}

Deno.test("dispatcher queues what no host can take, answers QUEUE_FULL beyond, QUEUE_TIMEOUT after the wait", async () => {
  const h = new FakeHost(1);
  const { set, r, submit, advance } = await setUp([h]);
  for (const id of [1, 2, 3, 4]) submit(id);
  assert.equal(h.calls.length, 1);
  assert.equal(r.got.get(4), "QUEUE_FULL");
  advance(50);
  h.answer("x", set.events); // frees the host: the oldest queued call goes
  assert.equal(r.got.get(1), "answered");
  assert.equal(h.calls[0]!.msgid, 2);
  advance(60); // 110 ms after queueing
  assert.equal(r.got.get(3), "QUEUE_TIMEOUT");
});

Deno.test("dispatcher answers TIMEOUT at the deadline and aborts a host stuck past kill-after", async () => {
  const h = new FakeHost(1);
  const { r, submit, advance } = await setUp([h], { requestTimeout: 100, killAfter: 300 });
  submit(7);
  advance(120);
  assert.equal(r.got.get(7), "TIMEOUT");
  assert.equal(h.load, 1, "the host still works on it");
  assert.equal(h.available, false, "and is not taken for idle");
  advance(250);
  assert.match(h.aborted[0]!, /stuck on m/);
});

Deno.test("dispatcher retries an idempotent call on another host, within the retry budget", async () => {
  const a = new FakeHost(1);
  const b = new FakeHost(2);
  const { set, r, submit } = await setUp([a, b], { retry: ["safe"] });
  submit(1, "safe");
  submit(2, "unsafe");
  const [first, second] = [a.calls[0] ?? b.calls[0]!, a.calls[0] ? b.calls[0]! : a.calls[0]!];
  const failing = a.calls.includes(first) ? a : b;
  const other = failing === a ? b : a;
  // The host holding the safe call fails: it goes to the other host once it is free.
  failing.calls = [];
  set.events.onOrphans(failing, [first], { code: "UPSTREAM_FAILED", message: "broke" });
  other.answer("done", set.events); // frees the other host for the retry
  assert.equal(r.got.get(second.msgid), "answered");
  assert.equal(other.calls[0], first, "the retry went to the other host");
  assert.equal(first.attempts, 2);
  set.events.onOrphans(other, [first], { code: "UPSTREAM_FAILED", message: "broke again" });
  assert.equal(r.got.get(first.msgid), "UPSTREAM_FAILED", "never a third attempt");
});

Deno.test("dispatcher drops the queued calls of a requester that went away", async () => {
  const h = new FakeHost(1);
  const { d, r, submit } = await setUp([h]);
  submit(1);
  submit(2);
  r.closed = true;
  d.forget(r);
  assert.equal(d.pending, 0);
});
