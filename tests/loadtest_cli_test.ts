/**
 * End-to-end tests of `proxy test`: short runs of the real program.
 */

import assert from "node:assert/strict";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { startProxy } from "../lib/loadtest/server_process.ts";
import type { LoadReport } from "../lib/loadtest/report.ts";
import { parsePercentileDistribution } from "../lib/loadtest/percentile_distribution.ts";
import { currentRuntime } from "../lib/process/self_command.ts";
import { MAIN_PATH, runProgram, spawnProgram, waitListening } from "./helpers/process.ts";

const RUN_TIMEOUT_MS = 30_000;

function parseReport(stdout: string, stderr: string): LoadReport {
  try {
    return JSON.parse(stdout) as LoadReport;
  } catch {
    throw new Error(`Cannot parse the report as JSON:\n${stdout}\n--- stderr ---\n${stderr}`);
  }
}

function assertConsistent(report: LoadReport): void {
  assert.ok(report.requests > 0, "requests > 0");
  assert.equal(report.unanswered, 0);
  assert.equal(report.connection_drops, 0);
  assert.ok(
    Math.abs(report.rps - report.requests / report.duration_s) <= 1,
    "rps = requests / duration_s",
  );
  const l = report.latency_ms;
  assert.ok(
    0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
    JSON.stringify(l),
  );
  const errors = Object.values(report.errors).reduce((a, b) => a + b, 0);
  assert.ok(report.succeeded <= report.requests && report.requests - report.succeeded <= errors);
}

Deno.test("proxy test --json starts a proxy, loads it and reports consistent numbers", async () => {
  const { code, stdout, stderr } = await runProgram(
    [
      "test",
      "--duration",
      "2",
      "--json",
      "--workers",
      "2",
      "--connections",
      "4",
      "--pipeline",
      "2",
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  const report = parseReport(stdout, stderr);
  assert.equal(code, 0, stderr);
  assertConsistent(report);
  assert.equal(report.self_started, true);
  assert.equal(report.workers, 2);
  assert.deepEqual(report.errors, {});
  assert.equal(report.succeeded, report.requests);
  assert.ok(Math.abs(report.duration_s - 2) < 0.1);
  assert.equal(report.proxy_exit_code, 0);
  assert.equal(report.passed, true);
  assert.equal(stderr, ""); // no live line when stderr is not a terminal
});

Deno.test("proxy test --chaos kills workers and leaves no request unanswered", async () => {
  const { code, stdout, stderr } = await runProgram(
    [
      "test",
      "--duration",
      "3",
      "--chaos",
      "300ms",
      "--json",
      "--workers",
      "2",
      "--connections",
      "8",
      "--pipeline",
      "4",
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  const report = parseReport(stdout, stderr);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assertConsistent(report);
  assert.ok((report.crashes ?? 0) > 0, "crashes > 0");
  assert.equal(report.unanswered, 0);
  // The only errors allowed are the requests lost with a killed worker.
  assert.deepEqual(Object.keys(report.errors).filter((c) => c !== "WORKER_EXITED"), []);
  assert.equal(report.worker_exited, report.errors.WORKER_EXITED ?? 0);
});

Deno.test("proxy test --target loads a backend and fails on unexpected errors", async () => {
  await using backend = spawnProgram(["backend", "--test-methods", "--listen", "127.0.0.1:0"]);
  const address = await waitListening(backend);

  const ok = await runProgram(
    [
      "test",
      "--target",
      address,
      "--duration",
      "1",
      "--connections",
      "2",
      "--pipeline",
      "4",
      "--json",
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  const report = parseReport(ok.stdout, ok.stderr);
  assert.equal(ok.code, 0, ok.stderr);
  assertConsistent(report);
  assert.equal(report.self_started, false);
  assert.equal(report.target, address);

  const failed = await runProgram(
    ["test", "--target", address, "--duration", "0.5", "--connections", "1", "--method", "fail"],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stdout, /Result +FAIL: \d+ unexpected errors?: HANDLER_ERROR \d+/);

  // The same errors, provoked on purpose, are not held against the run.
  const expected = await runProgram(
    [
      "test",
      "--target",
      address,
      "--duration",
      "0.5",
      "--connections",
      "1",
      "--method",
      "fail",
      "--expect-error",
      "HANDLER_ERROR",
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assert.equal(expected.code, 0, expected.stdout);
  assert.match(expected.stdout, /HANDLER_ERROR [\d,]+ \(expected\)/);
});

Deno.test("proxy test --hdr-out writes the latencies as HdrHistogram's percentile distribution", async () => {
  await using backend = spawnProgram(["backend", "--test-methods", "--listen", "127.0.0.1:0"]);
  const address = await waitListening(backend);
  const file = await Deno.makeTempFile({ suffix: ".hgrm" });
  try {
    const run = await runProgram(
      ["test", "--target", address, "--duration", "0.5", "--connections", "2", "--json"].concat(
        ["--hdr-out", file],
      ),
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    const report = parseReport(run.stdout, run.stderr);
    assert.equal(run.code, 0, run.stderr);
    const d = parsePercentileDistribution(await Deno.readTextFile(file));
    assert.equal(d.totalCount, report.requests);
    assert.equal(d.max, report.latency_ms.max);
    assert.equal(d.rows.at(-1)!.percentile, 1);
    const median = d.rows.find((r) => r.percentile >= 0.5)!;
    assert.ok(Math.abs(median.value - report.latency_ms.p50) <= 0.002, `${median.value}`);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("proxy test --mix sends another method in its share and reports it apart", async () => {
  await using backend = spawnProgram(["backend", "--test-methods", "--listen", "127.0.0.1:0"]);
  const address = await waitListening(backend);
  const run = await runProgram(
    ["test", "--target", address, "--duration", "0.5", "--connections", "2", "--json"].concat(
      ["--mix", "sleep:[2]:20%"],
    ),
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  const report = parseReport(run.stdout, run.stderr);
  assert.equal(run.code, 0, run.stderr);
  assertConsistent(report);
  const [echo, sleep] = report.by_method!;
  assert.deepEqual([echo!.method, echo!.share_pct, sleep!.method, sleep!.share_pct], [
    "echo",
    80,
    "sleep",
    20,
  ]);
  assert.deepEqual(sleep!.params, [2]);
  assert.equal(echo!.requests + sleep!.requests, report.requests);
  assert.ok(sleep!.requests > 0 && sleep!.latency_ms.p50 >= 2, JSON.stringify(sleep));

  for (const bad of ["sleep:2:20%", "echo:[1]:5%", "sleep:[1]:60%,x"]) {
    const usage = await runProgram(["test", "--target", address, "--mix", bad]);
    assert.equal(usage.code, 2, `${bad}: ${usage.stderr}`);
  }
  const over = await runProgram(
    ["test", "--target", address, "--mix", "a:[]:60%", "--mix", "b:[]:60%"],
  );
  assert.equal(over.code, 2);
  assert.match(over.stderr, /the shares add up to 120%, above 100%/);
});

Deno.test("proxy test --rate fails and says so when the target holds the rate back", async () => {
  await using backend = spawnProgram(["backend", "--test-methods", "--listen", "127.0.0.1:0"]);
  const address = await waitListening(backend);
  // One connection, one in flight, each request answered after 1 s: one is sent, the rest wait.
  const args = ["test", "--target", address, "--duration", "0.5", "--grace", "2", "--rate", "100"];
  const load = ["--connections", "1", "--method", "sleep", "--params", "[1000]"];
  const json = await runProgram([...args, ...load, "--json"], { timeoutMs: RUN_TIMEOUT_MS });
  const report = parseReport(json.stdout, json.stderr);
  assert.equal(json.code, 1, json.stderr);
  assert.equal(report.rate, 100);
  assert.equal(report.rate_achieved, 2); // 1 request in 0.5 s
  assert.equal(report.rate_fell_short, true);
  assert.equal(report.rate_bottleneck, "target");
  assert.equal(report.passed, false);
  const text = await runProgram([...args, ...load], { timeoutMs: RUN_TIMEOUT_MS });
  assert.equal(text.code, 1, text.stderr);
  assert.match(
    text.stdout,
    /Rate +asked 100\/s, achieved 2\/s: the generator could not keep up \(its connections mostly waited/,
  );
  assert.match(text.stdout, /Result +FAIL: the rate fell short: asked 100\/s, achieved 2\/s/);
});

Deno.test("proxy test exits 3 when the target cannot be reached, 2 on bad usage", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const down = await runProgram(["test", "--target", `127.0.0.1:${port}`, "--duration", "1"]);
  assert.equal(down.code, 3);
  assert.match(down.stderr, /Cannot connect to 127\.0\.0\.1:\d+/);
  const usage = await runProgram(["test", "--target", `127.0.0.1:${port}`, "--workers", "2"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--workers is for the proxy started without --target/);
});

Deno.test("startProxy() starts a proxy whose stop() ends it and all its workers", async () => {
  const runtime = { ...currentRuntime(), mainModule: new URL(`file://${MAIN_PATH}`).href };
  const proxy = await startProxy({ workers: 2, runtime });
  let pids: number[];
  try {
    const client = await RpcClient.connect(proxy.address);
    try {
      const stats = await client.call("proxy.stats") as { workers: { pid: number }[] };
      pids = [proxy.pid, ...stats.workers.map((w) => w.pid)];
    } finally {
      client.close();
    }
  } finally {
    const exit = await proxy.stop();
    assert.deepEqual(exit, { code: 0, signal: null, killed: false });
  }
  assert.equal(pids.length, 3);
  const ps = await new Deno.Command("ps", { args: ["-o", "pid=,stat=", "-p", pids.join(",")] })
    .output();
  assert.equal(new TextDecoder().decode(ps.stdout).trim(), "", "a process is still running");
});
