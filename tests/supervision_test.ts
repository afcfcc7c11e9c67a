/**
 * End-to-end tests of worker supervision: pool modes, retries, crash loops,
 * deadlines, recycling, rolling restarts, cancellation.
 */

import assert from "node:assert/strict";
import { RpcClient } from "../lib/client/rpc_client.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";
import { errorOf, eventually } from "./helpers/wait.ts";
import { spawnProgram, tempDir } from "./helpers/process.ts";
import { startProxy as startTestProxy, type TestProxy } from "./helpers/proxy.ts";

// Every proxy here serves the test and control methods.
function startProxy(...args: string[]): Promise<TestProxy> {
  return startTestProxy(["--test-methods", "--control-methods", ...args]);
}

const ready = (s: ProxyStats) => s.workers.filter((w) => w.state === "ready");

Deno.test("dynamic pool spawns a spare ahead of demand and stops idle extras", async () => {
  await using p = await startProxy(
    ...[
      "--pool",
      "dynamic",
      "--min-workers",
      "1",
      "--max-workers",
      "4",
      "--min-spare",
      "1",
      "--max-spare",
      "1",
    ],
    ...["--idle-timeout", "400ms"],
  );
  assert.equal((await p.stats()).workers.length, 1);
  const busy = p.client.call("sleep", [1500]);
  // The only worker is busy: a spare is started without any request waiting for it.
  const s = await eventually("a spare worker", async () => {
    const s = await p.stats();
    return ready(s).length === 2 && s.workers.some((w) => w.in_flight === 0) && s;
  });
  assert.equal(s.queue.length, 0);
  assert.equal(await busy, null);
  await eventually("idle extra stopped", async () => (await p.stats()).workers.length === 1);
  const after = await p.stats();
  assert.ok(after.past_exits.some((e) => e.reason === "stopped"));
  assert.equal(await p.client.call("echo", ["still served"]), "still served");
});

Deno.test("ondemand pool starts a worker on the first request and stops it when idle", async () => {
  await using p = await startProxy(
    "--pool",
    "ondemand",
    "--max-workers",
    "2",
    "--idle-timeout",
    "300ms",
  );
  assert.equal((await p.stats()).workers.length, 0);
  assert.equal(await p.client.call("echo", ["first"]), "first");
  const s = await p.stats();
  assert.equal(ready(s).length, 1);
  await eventually("idle worker stopped", async () => (await p.stats()).workers.length === 0);
  assert.equal(await p.client.call("echo", ["again"]), "again");
});

Deno.test("dedicated pool gives each key its own worker, started once even on concurrent first use", async () => {
  await using p = await startProxy(
    "--pool",
    "dedicated",
    "--route-key",
    "user_id",
    "--max-workers",
    "2",
  );
  const pidOf = async (user: string) =>
    ((await p.client.call("info", [{ user_id: user }])) as { pid: number }).pid;
  const first = await Promise.all(Array.from({ length: 12 }, () => pidOf("alice")));
  assert.equal(new Set(first).size, 1, "one worker for alice");
  assert.equal((await p.stats()).totals.spawns, 1, "started once");
  const bob = await pidOf("bob");
  assert.notEqual(bob, first[0]);
  assert.equal(await pidOf("alice"), first[0], "alice keeps her worker");
  const s = await p.stats();
  assert.deepEqual(s.workers.map((w) => w.key).sort(), ["alice", "bob"]);
  assert.equal((await errorOf(p.client.call("info", [{ user_id: "carol" }]))).code, "WORKER_LIMIT");
  assert.equal((await errorOf(p.client.call("info", [{ name: "no key" }]))).code, "NO_ROUTE_KEY");
});

Deno.test("dedicated workers stop after the idle timeout and come back on the next request", async () => {
  await using p = await startProxy("--pool", "dedicated", "--idle-timeout", "300ms");
  const pid1 = ((await p.client.call("info", [{ user_id: "u" }])) as { pid: number }).pid;
  await eventually(
    "idle dedicated worker stopped",
    async () => (await p.stats()).workers.length === 0,
  );
  const pid2 = ((await p.client.call("info", [{ user_id: "u" }])) as { pid: number }).pid;
  assert.notEqual(pid1, pid2);
});

Deno.test("an idempotent request survives the crash of its worker by a retry elsewhere", async () => {
  await using p = await startProxy("--workers", "2", "--retry-idempotent", "sleep,echo");
  const slow = p.client.call("sleep", [800]);
  const victim = await eventually(
    "sleep in flight",
    async () => (await p.stats()).workers.find((w) => w.in_flight > 0),
  );
  Deno.kill(victim.pid!, "SIGKILL");
  assert.equal(await slow, null, "answered by the retry");
  const s = await p.stats();
  assert.equal(s.totals.retries, 1);
  assert.equal(s.totals.crashes, 1);
});

Deno.test("a crash loop stops respawning and answers NO_WORKERS with the worker's last output", async () => {
  await using dir = await tempDir();
  const marker = dir.join("started");
  // Starts fine once, then dies at every start with a message on stderr.
  const cmd =
    `sh -c 'if [ -e ${marker} ]; then echo boom-crash-loop >&2; exit 3; fi; touch ${marker}; ` +
    `exec python3 tests/testdata/py_worker.py {socket}'`;
  await using p = await startProxy(
    ...[
      "--workers",
      "1",
      "--worker-cmd",
      cmd,
      "--crash-loop-threshold",
      "3",
      "--crash-loop-cooldown",
      "1m",
    ],
  );
  const pid = (await p.stats()).workers[0]!.pid!;
  Deno.kill(pid, "SIGKILL");
  await eventually("crash loop", async () => (await p.stats()).workers[0]!.state === "crash-loop");
  const err = await errorOf(p.client.call("echo", ["x"]));
  assert.equal(err.code, "NO_WORKERS");
  assert.ok(JSON.stringify(err.data).includes("boom-crash-loop"), JSON.stringify(err.data));
  // The crash after ready counts as much as the failed starts that follow it.
  await p.proc.waitForLine(/crash-looping: it exited 3 times within 10000 ms/);
  const s = await p.stats();
  assert.equal(s.past_exits.filter((e) => e.reason === "died while starting").length, 2);
});

Deno.test("a request past its deadline is answered TIMEOUT and a stuck worker is killed with a slow log", async () => {
  await using p = await startProxy(
    ...[
      "--workers",
      "1",
      "--request-timeout",
      "200ms",
      "--method-timeout",
      "echo=5s",
      "--kill-after",
      "600ms",
    ],
  );
  const pid = (await p.stats()).workers[0]!.pid!;
  const started = performance.now();
  const err = await errorOf(p.client.call("sleep", [10_000]));
  assert.equal(err.code, "TIMEOUT");
  assert.ok(performance.now() - started < 5000);
  const [line] = await p.proc.waitForLine(/Slow request: .*/);
  assert.match(
    line,
    new RegExp(`pid ${pid}\\).*method=sleep params_digest=[0-9a-f]{8}/\\d+B elapsed_ms=\\d+`),
  );
  const s = await eventually("replacement", async () => {
    const s = await p.stats();
    return s.workers[0]!.state === "ready" && s.workers[0]!.pid !== pid && s;
  });
  assert.equal(s.totals.timeouts, 1);
  assert.equal(s.totals.kills, 1);
  assert.equal(await p.client.call("echo", ["alive"]), "alive");
});

Deno.test("workers retire after --max-requests without failing a request", async () => {
  await using p = await startProxy("--workers", "1", "--max-requests", "25");
  const pids = new Set<number>();
  for (let round = 0; round < 5; round++) {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => p.client.call("echo", [round * 100 + i])),
    );
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => round * 100 + i));
    pids.add(((await p.client.call("info")) as { pid: number }).pid);
  }
  const s = await eventually("retired workers gone", async () => {
    const s = await p.stats();
    return s.past_exits.length >= 2 && s;
  });
  assert.ok(s.totals.recycles >= 3, `recycles: ${s.totals.recycles}`);
  assert.ok(pids.size >= 2);
  assert.ok(s.past_exits.every((e) => e.reason === "stopped"), JSON.stringify(s.past_exits));
});

Deno.test("workers above --max-memory are retired", async () => {
  await using p = await startProxy(
    "--workers",
    "1",
    "--max-memory",
    "1",
    "--memory-check-interval",
    "100ms",
  );
  const s = await eventually("a memory recycle", async () => {
    const s = await p.stats();
    return s.totals.recycles > 0 && s.workers.some((w) => (w.rss_mb ?? 0) > 1) && s;
  });
  assert.ok(s.totals.recycles > 0);
  assert.equal(await p.client.call("echo", ["ok"]), "ok");
});

Deno.test("rolling restarts under load fail no request", async () => {
  await using p = await startProxy("--workers", "2");
  const before = new Set((await p.stats()).workers.map((w) => w.pid));
  const clients = await Promise.all(Array.from({ length: 4 }, () => RpcClient.connect(p.address)));
  let stop = false;
  let done = 0;
  const failures: unknown[] = [];
  const loops = clients.map(async (c, ci) => {
    for (let i = 0; !stop; i++) {
      const payload = `${ci}-${i}`;
      try {
        const r = i % 10 === 0 ? await c.call("sleep", [30]) : await c.call("echo", [payload]);
        if (i % 10 !== 0 && r !== payload) failures.push(`mismatch ${r} != ${payload}`);
        done++;
      } catch (err) {
        failures.push(err);
      }
    }
  });
  try {
    for (let i = 0; i < 3; i++) {
      const result = await p.client.call("proxy.reload") as { replaced: number; failed: number };
      assert.deepEqual(result, { replaced: 2, failed: 0 });
    }
    // And by signal, as an operator would.
    const spawns = (await p.stats()).totals.spawns;
    p.proc.kill("SIGHUP");
    await eventually("SIGHUP reload", async () => {
      const s = await p.stats();
      return s.totals.spawns === spawns + 2 && ready(s).length === 2 && s.workers.length === 2;
    });
  } finally {
    stop = true;
    await Promise.all(loops);
    for (const c of clients) c.close();
  }
  assert.deepEqual(failures, []);
  assert.ok(done > 100, `only ${done} requests went through`);
  const after = await p.stats();
  assert.ok(after.workers.every((w) => !before.has(w.pid)), "every worker was replaced");
});

Deno.test("a client that disconnects frees its worker's place at once", async () => {
  await using p = await startProxy(
    ...["--workers", "1", "--max-in-flight-per-worker", "1", "--queue-timeout", "1500ms"],
  );
  const a = await RpcClient.connect(p.address);
  const pending = a.call("sleep", [2500]).catch(() => "closed");
  await eventually("sleep in flight", async () => (await p.stats()).workers[0]!.in_flight === 1);
  a.close();
  await pending;
  await eventually("place freed", async () => (await p.stats()).workers[0]!.in_flight === 0);
  // Without the freed place this would wait for the sleep and time out in the queue.
  assert.equal(await p.client.call("echo", ["next"]), "next");
});

Deno.test("rolling restarts during a `proxy test` load: 0 errors and 0 unanswered", async () => {
  await using p = await startProxy("--workers", "2");
  const load = spawnProgram([
    ...["test", "--target", p.address, "--duration", "4s", "--connections", "8", "--pipeline", "4"],
    "--json",
  ]);
  await using _load = load;
  await eventually("load running", async () => (await p.stats()).totals.requests > 100);
  const reloads: { replaced: number; failed: number }[] = [];
  for (let i = 0; i < 3; i++) {
    reloads.push(await p.client.call("proxy.reload") as { replaced: number; failed: number });
  }
  const status = await load.waitExit(20_000);
  const report = JSON.parse(load.stdout) as {
    requests: number;
    errors: Record<string, number>;
    unanswered: number;
  };
  assert.deepEqual(reloads, Array(3).fill({ replaced: 2, failed: 0 }));
  assert.equal(status.code, 0, load.stderr);
  assert.deepEqual(report.errors, {});
  assert.equal(report.unanswered, 0);
  assert.ok(report.requests > 0);
  assert.equal((await p.stats()).totals.spawns, 2 + 6);
});
