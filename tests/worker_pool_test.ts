/**
 * WorkerPool logic against fake in-process workers (no processes started).
 */

import assert from "node:assert/strict";
import { createPool, type PoolOptions } from "../lib/dispatch/create_dispatcher.ts";
import type { Dispatcher } from "../lib/dispatch/dispatcher.ts";
import type { Supervisor } from "../lib/dispatch/supervisor.ts";
import { createEnvelope, encodeRequest, readEnvelope } from "../lib/protocol/mod.ts";
import { FakeSpawner, type Outcome, RecordingRequester } from "./helpers/fake_worker.ts";

type WorkerPool = Dispatcher & { workers: Supervisor["workers"] };

async function withPool(
  options: Partial<PoolOptions>,
  fn: (pool: WorkerPool, spawner: FakeSpawner) => Promise<void>,
  spawner: FakeSpawner = new FakeSpawner(),
): Promise<void> {
  const socketDir = await Deno.makeTempDir({ prefix: "pool-test-" });
  const dispatcher = createPool({
    socketDir,
    commandLine: (socket) => ({ cmd: "fake", args: [], env: { PROXY_WORKER_SOCKET: socket } }),
    spawn: spawner.spawn,
    ...options,
  });
  // The workers, as the pool's supervisor holds them.
  const pool = Object.defineProperty(dispatcher, "workers", {
    get: () => (dispatcher.set as Supervisor).workers,
  }) as WorkerPool;
  try {
    await pool.start();
    await fn(pool, spawner);
  } finally {
    await pool.close({ graceMs: 1000 });
    await Deno.remove(socketDir, { recursive: true });
  }
}

let nextId = 1;
function submit(
  pool: WorkerPool,
  requester: RecordingRequester,
  method: string,
  params: unknown[],
  key?: string,
): Promise<Outcome> {
  const msgid = nextId++;
  const frame = encodeRequest(msgid, method, params);
  pool.submit(requester, msgid, method, frame, readEnvelope(frame, createEnvelope()).tail, key);
  return requester.outcome(msgid);
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("WorkerPool.submit() spreads requests over ready workers and answers each requester", async () => {
  await withPool({ workers: 3 }, async (pool, spawner) => {
    const req = new RecordingRequester();
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, i) => submit(pool, req, "echo", [i])),
    );
    assert.deepEqual(outcomes, Array.from({ length: 30 }, (_, i) => ({ result: i })));
    assert.equal(spawner.processes.length, 3);
    assert.ok(spawner.processes.every((p) => p.server.requests > 0), "every worker served some");
  });
});

Deno.test("WorkerPool in dedicated mode starts one worker for concurrent first requests of a key", async () => {
  await withPool({ pool: "dedicated", maxWorkers: 2 }, async (pool, spawner) => {
    const req = new RecordingRequester();
    const first = await Promise.all(
      Array.from({ length: 10 }, () => submit(pool, req, "pid", [], "k1")),
    );
    assert.equal(spawner.processes.length, 1);
    assert.equal(new Set(first.map((o) => JSON.stringify(o))).size, 1);
    const other = await submit(pool, req, "pid", [], "k2");
    assert.notDeepEqual(other, first[0]);
    const limited = await submit(pool, req, "pid", [], "k3");
    assert.equal((limited as { error: { code: string } }).error.code, "WORKER_LIMIT");
    const noKey = await submit(pool, req, "pid", []);
    assert.equal((noKey as { error: { code: string } }).error.code, "NO_ROUTE_KEY");
  });
});

Deno.test("WorkerPool answers WORKER_EXITED for calls at a crashed worker and replaces it", async () => {
  await withPool({ workers: 1 }, async (pool, spawner) => {
    const req = new RecordingRequester();
    const inFlight = submit(pool, req, "sleep", [10_000]);
    await until("call in flight", () => pool.workers[0]!.inFlight === 1);
    spawner.processes[0]!.crash(70);
    const outcome = await inFlight as { error: { code: string; data: { code: number } } };
    assert.equal(outcome.error.code, "WORKER_EXITED");
    assert.equal(outcome.error.data.code, 70);
    assert.deepEqual(await submit(pool, req, "echo", ["after"]), { result: "after" });
    assert.equal(spawner.processes.length, 2);
    const stats = pool.stats();
    assert.equal(stats.workers[0]!.restarts, 1);
    assert.equal(stats.totals.crashes, 1);
  });
});

Deno.test("WorkerPool retries an idempotent call once on another worker", async () => {
  await withPool({ workers: 2, retryIdempotent: ["sleep"] }, async (pool, spawner) => {
    const req = new RecordingRequester();
    const call = submit(pool, req, "sleep", [200]);
    await until("call in flight", () => pool.workers.some((w) => w.inFlight === 1));
    const busy = pool.workers.findIndex((w) => w.inFlight === 1);
    spawner.processes[busy]!.crash();
    assert.deepEqual(await call, { result: null });
    assert.equal(pool.stats().totals.retries, 1);
  });
});

Deno.test("WorkerPool answers QUEUE_FULL beyond the queue and serves the queued ones later", async () => {
  await withPool({ workers: 1, maxInFlightPerWorker: 1, queueSize: 1 }, async (pool) => {
    const req = new RecordingRequester();
    const busy = submit(pool, req, "sleep", [100]);
    const queued = submit(pool, req, "echo", ["queued"]);
    const rejected = await submit(pool, req, "echo", ["rejected"]);
    assert.equal((rejected as { error: { code: string } }).error.code, "QUEUE_FULL");
    assert.deepEqual(await busy, { result: null });
    assert.deepEqual(await queued, { result: "queued" });
  });
});

Deno.test("WorkerPool.forget() drops a closed requester's queued requests and frees its places", async () => {
  await withPool({ workers: 1, maxInFlightPerWorker: 1, requestTimeout: 5000 }, async (pool) => {
    const gone = new RecordingRequester();
    const stays = new RecordingRequester();
    void submit(pool, gone, "sleep", [300]);
    void submit(pool, gone, "echo", ["never"]);
    gone.closed = true;
    pool.forget(gone);
    assert.equal(pool.pending, 0);
    assert.deepEqual(await submit(pool, stays, "echo", ["now"]), { result: "now" });
  });
});

Deno.test("WorkerPool in dedicated mode answers a request that arrives while its key's idle worker stops", async () => {
  const slowStop = new FakeSpawner({}, 300);
  await withPool({ pool: "dedicated", idleTimeout: 100 }, async (pool) => {
    const req = new RecordingRequester();
    const first = await submit(pool, req, "pid", [], "k");
    await until(
      "idle worker stopping",
      () => pool.stats().workers.some((w) => w.state === "draining"),
    );
    const second = await submit(pool, req, "pid", [], "k");
    assert.ok("result" in second, JSON.stringify(second));
    assert.notDeepEqual(second, first, "a new worker answered");
    assert.equal(pool.pending, 0);
  }, slowStop);
});

Deno.test("WorkerPool in dedicated mode gives a crashed worker's place back", async () => {
  await withPool({ pool: "dedicated", maxWorkers: 1 }, async (pool, spawner) => {
    const req = new RecordingRequester();
    assert.ok("result" in await submit(pool, req, "pid", [], "a"));
    spawner.processes[0]!.crash();
    await until("slot released", () => pool.stats().workers.length === 0);
    assert.ok("result" in await submit(pool, req, "pid", [], "b"), "a new key fits again");
  });
});
