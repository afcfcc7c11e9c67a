/**
 * Logs for production: JSON lines for collectors, a log file rotated by size
 * and written out on SIGTERM, a worker's output tagged with its id and pid
 * (its own records kept as records), and a flooding worker held to
 * `--worker-log-rate`. Real processes, port 0, temp dirs.
 */

import assert from "node:assert/strict";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { parseWorkerLine } from "../lib/dispatch/worker_output.ts";
import { LineRateLimit } from "../lib/process/line_rate_limit.ts";
import { startProxy } from "./helpers/proxy.ts";
import { type ProgramProcess, REPO_ROOT, spawnProgram, tempDir } from "./helpers/process.ts";
import { eventually } from "./helpers/wait.ts";

const CHATTY = `${REPO_ROOT}/tests/testdata/chatty_handler.ts`;

/** One record of `--log-format json`. */
interface JsonRecord {
  "@timestamp": string;
  level: string;
  logger: string;
  message: string;
  properties: Record<string, unknown>;
}

function records(proc: ProgramProcess): JsonRecord[] {
  return proc.stderrLines.map((line) => JSON.parse(line) as JsonRecord);
}

async function recordMatching(proc: ProgramProcess, regex: RegExp): Promise<JsonRecord> {
  const match = await proc.waitForLine(regex);
  return JSON.parse(match.input!) as JsonRecord;
}

async function textOf(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

Deno.test("serve --log-format json writes one JSON object per line: @timestamp, level, logger, message, properties", async () => {
  await using p = await startProxy(["--workers", "1", "--log-format", "json"]);
  assert.equal(await p.client.call("echo", ["hi"]), "hi");
  p.client.close();
  p.proc.kill("SIGTERM");
  assert.equal((await p.proc.waitExit()).code, 0);
  const all = records(p.proc); // every line parses
  for (const r of all) {
    assert.equal(new Date(r["@timestamp"]).toISOString(), r["@timestamp"]);
    assert.match(r.level, /^(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)$/);
    assert.equal(typeof r.logger, "string");
    assert.equal(typeof r.message, "string");
    assert.equal(typeof r.properties, "object");
  }
  const listening = all.find((r) => r.message.includes("listening on"))!;
  assert.equal(listening.level, "INFO");
  assert.equal(listening.logger, "proxy.proxy");
  assert.equal(all.at(-1)!.message, "Proxy stopped");
});

Deno.test("backend --log-format json logs its listening line as JSON", async () => {
  await using backend = spawnProgram([
    "backend",
    "--listen",
    "127.0.0.1:0",
    "--log-format",
    "json",
  ]);
  const r = await recordMatching(backend, /listening on/);
  assert.equal(r.logger, "proxy.backend");
  assert.match(r.message, /^Backend \d+ listening on 127\.0\.0\.1:\d+$/);
});

Deno.test("a worker's JSON records are logged as records with worker_id and pid added; its plain lines become the message", async () => {
  await using p = await startProxy(["--workers", "1", "--log-format", "json", "--handler", CHATTY]);
  const worker = (await p.stats()).workers[0]!;
  await p.client.call("warn", ["careful"]);
  await p.client.call("chatter", [1, "hello"]);
  const record = await recordMatching(p.proc, /"logger":"proxy\.handler"/);
  assert.equal(record.level, "WARN");
  assert.equal(record.message, 'Handler says "careful"');
  assert.deepEqual(record.properties, {
    message: "careful",
    answer: 42,
    worker_id: worker.id,
    pid: worker.pid,
  });
  const plain = await recordMatching(p.proc, /hello 0 /);
  assert.equal(plain.logger, "proxy.worker");
  assert.equal(plain.level, "INFO");
  assert.match(plain.message, /^hello 0 \{braces stay\} x+$/);
  assert.deepEqual(plain.properties, { worker_id: worker.id, pid: worker.pid });
});

Deno.test("pretty worker lines are tagged [worker N pid P]", async () => {
  await using p = await startProxy(["--workers", "1", "--handler", CHATTY]);
  const worker = (await p.stats()).workers[0]!;
  await p.client.call("chatter", [1, "pretty"]);
  const m = await p.proc.waitForLine(/ \[INF\] proxy·worker: \[worker (\d+) pid (\d+)\] pretty 0 /);
  assert.deepEqual([Number(m[1]), Number(m[2])], [worker.id, worker.pid]);
});

Deno.test("--log-file rotates at --log-max-size, keeps --log-max-files files, and has the last line after SIGTERM", async () => {
  await using dir = await tempDir();
  const log = dir.join("proxy.log");
  await using proc = spawnProgram([
    "serve",
    ...["--port", "0", "--workers", "1", "--handler", CHATTY],
    ...["--log-file", log, "--log-max-size", "4k", "--log-max-files", "3"],
    ...["--worker-log-rate", "0"],
  ]);
  const address = await eventually(
    "the listening line in the log file",
    async () => /listening on (\S+)/.exec(await textOf(log))?.[1],
  );
  const client = await RpcClient.connect(address);
  await client.call("chatter", [200]); // about 32 KiB of log
  await eventually(
    "the last line in the log",
    async () => (await textOf(log)).includes("chatter 199 "),
  );
  client.close();
  proc.kill("SIGTERM");
  assert.equal((await proc.waitExit()).code, 0);
  const files = (await Array.fromAsync(Deno.readDir(dir.path))).map((e) => e.name).sort();
  assert.deepEqual(files, ["proxy.log", "proxy.log.1", "proxy.log.2"]);
  for (const name of files) {
    const size = (await Deno.stat(dir.join(name))).size;
    assert.ok(size > 0 && size <= 4096, `${name} has ${size} bytes`);
  }
  assert.match(await Deno.readTextFile(log), /\[INF\] proxy·proxy: Proxy stopped\n$/);
  assert.equal(proc.stderr, "", "nothing on stderr");
});

Deno.test("a start error goes to the log file too", async () => {
  await using dir = await tempDir();
  const log = dir.join("proxy.log");
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((taken.addr as Deno.NetAddr).port);
  await using proc = spawnProgram(["serve", "--port", port, "--workers", "1", "--log-file", log]);
  assert.equal((await proc.waitExit()).code, 1);
  assert.match(proc.stderr, /address already in use/);
  assert.match(
    await Deno.readTextFile(log),
    /\[FTL\] proxy: Cannot listen on .*address already in use/,
  );
});

Deno.test("--worker-log-rate drops a flooding worker's lines beyond the rate and counts them; the proxy keeps answering", async () => {
  await using p = await startProxy([
    ...["--workers", "1", "--log-format", "json", "--handler", CHATTY],
    ...["--worker-log-rate", "5"],
  ]);
  const worker = (await p.stats()).workers[0]!;
  assert.equal(await p.client.call("chatter", [300, "flood"]), 300);
  // The count is logged when the second the lines were dropped in has ended.
  const { logged, dropped } = await eventually("every line logged or counted", () => {
    const all = records(p.proc);
    const logged = all.filter((r) => r.message.startsWith("flood ")).length;
    const notices = all.filter((r) => typeof r.properties.dropped === "number");
    const dropped = notices.reduce((n, r) => n + (r.properties.dropped as number), 0);
    return Promise.resolve(logged + dropped === 300 ? { logged, dropped, notices } : undefined);
  });
  // 5 a second: the 300 lines come within a second or so (a slow machine may spread them).
  assert.ok(logged >= 5 && logged <= 30, `${logged} lines logged`);
  assert.ok(dropped >= 270, `${dropped} dropped`);
  const notice = records(p.proc).find((r) => typeof r.properties.dropped === "number")!;
  assert.equal(notice.level, "WARN");
  assert.equal(notice.logger, "proxy.worker");
  assert.match(
    notice.message,
    /^Dropped \d+ lines of output \(more than --worker-log-rate 5 a second\)$/,
  );
  assert.equal(notice.properties.worker_id, worker.id);
  assert.equal(notice.properties.pid, worker.pid);
  assert.equal(await p.client.call("echo", ["still here"]), "still here");
});

Deno.test("parseWorkerLine() reads LogTape's and other JSON loggers' records; anything else is the message", () => {
  const logtape = parseWorkerLine(
    '{"@timestamp":"2026-01-02T03:04:05.000Z","level":"WARN","message":"Backend 7 says hi",' +
      '"logger":"proxy.backend","properties":{"pid":7}}',
  );
  assert.deepEqual(logtape, {
    level: "warning",
    message: "Backend 7 says hi",
    timestamp: Date.UTC(2026, 0, 2, 3, 4, 5),
    category: ["proxy", "backend"],
    properties: { pid: 7 },
  });
  const pino = parseWorkerLine('{"level":50,"time":1700000000000,"msg":"boom","req":1}');
  assert.deepEqual(pino, {
    level: "error",
    message: "boom",
    timestamp: 1_700_000_000_000,
    category: undefined,
    properties: { req: 1 },
  });
  for (const text of ["plain text", '{"no":"message"}', "[1,2]", "{not json", ""]) {
    assert.deepEqual(parseWorkerLine(text), {
      level: "info",
      message: text,
      timestamp: undefined,
      category: undefined,
      properties: {},
    });
  }
  assert.equal(parseWorkerLine('{"message":"m","level":"loud"}').level, "info");
});

Deno.test("LineRateLimit lets `limit` lines through per window and reports the dropped ones when the window rolls or on close", () => {
  let now = 0;
  const reports: number[] = [];
  const limit = new LineRateLimit({
    limit: 2,
    windowMs: 1000,
    clock: () => now,
    onDropped: (n) => reports.push(n),
  });
  assert.deepEqual([limit.admit(), limit.admit(), limit.admit(), limit.admit()], [
    true,
    true,
    false,
    false,
  ]);
  now = 1000;
  assert.equal(limit.admit(), true); // a new window: the two dropped are reported first
  assert.deepEqual(reports, [2]);
  assert.equal(limit.admit(), true);
  assert.equal(limit.admit(), false);
  limit.close();
  limit.close();
  assert.deepEqual(reports, [2, 1]);
  const unlimited = new LineRateLimit({ limit: 0, onDropped: () => reports.push(-1) });
  for (let i = 0; i < 10_000; i++) assert.equal(unlimited.admit(), true);
  unlimited.close();
  assert.deepEqual(reports, [2, 1]);
});

Deno.test("LineRateLimit reports dropped lines when their window ends, with no line after them", async () => {
  const reported = Promise.withResolvers<number>();
  const limit = new LineRateLimit({ limit: 1, windowMs: 50, onDropped: reported.resolve });
  assert.equal(limit.admit(), true);
  assert.equal(limit.admit(), false);
  assert.equal(limit.admit(), false);
  // Its timer does not hold the process: this deadline keeps the test alive.
  const deadline = setTimeout(() => reported.reject(new Error("no report within 5 s")), 5000);
  try {
    assert.equal(await reported.promise, 2);
  } finally {
    clearTimeout(deadline);
    limit.close();
  }
});
