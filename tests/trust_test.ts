/**
 * End-to-end tests of what a user of an RPC proxy must be able to trust:
 * data comes back exactly as sent, peers nobody here wrote can talk to it,
 * one client's bad input hurts only that client, every request gets one
 * answer, and nothing grows without bound. Real processes, real sockets.
 */

import assert from "node:assert/strict";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { encodeValue, Ext } from "../lib/protocol/mod.ts";
import { encodeLegacyFrame } from "../lib/protocol/legacy_frame.ts";
import { RawConnection } from "./helpers/raw_conn.ts";
import { pythonWith, runPython } from "./helpers/python.ts";
import { startProxy } from "./helpers/proxy.ts";
import {
  programArgs,
  REPO_ROOT,
  runProgram,
  spawnCommand,
  spawnProgram,
  splitHostPort,
  tempDir,
  waitListening,
} from "./helpers/process.ts";
import { errorOf, eventually } from "./helpers/wait.ts";

const PY_WORKER = `${REPO_ROOT}/tests/testdata/py_worker.py`;

type Response = [number, number | bigint, { code: string; message: string } | null, unknown];

Deno.test("Python's msgpack vectors come back byte for byte through serve and its built-in workers", async () => {
  const python = await pythonWith("msgpack");
  await using p = await startProxy(["--workers", "2"]);
  const { hostname, port } = splitHostPort(p.address);
  const out = JSON.parse(
    await runPython(python, [
      `${REPO_ROOT}/tests/testdata/py_echo_client.py`,
      hostname,
      String(port),
    ]),
  ) as { sent: number; mismatches: unknown[] };
  assert.deepEqual(out.mismatches, []);
  assert.ok(out.sent > 150, `sent ${out.sent}`);
});

Deno.test("hostile params get INVALID_PARAMS (or their echo) with their msgid; the worker's other requests are answered", async () => {
  await using p = await startProxy(["--workers", "1", "--test-methods"]);
  const other = await RpcClient.connect(p.address);
  const slow = other.call("sleep", [400]);
  await eventually("sleep in flight", async () => (await p.stats()).workers[0]!.in_flight === 1);
  await using raw = await RawConnection.open(p.address);
  // The bytes of the report: echo of fixext1 type 5. An extension is carried.
  await raw.write(
    new Uint8Array([
      0x94,
      0x00,
      0x01,
      0xa4,
      ...new TextEncoder().encode("echo"),
      0x91,
      0xd4,
      0x05,
      0x00,
    ]),
  );
  assert.deepEqual(await raw.receive(), [1, 1, null, new Ext(5, new Uint8Array([0]))]);
  // A map with an array as key comes back as it went.
  const arrayKey = new Map<unknown, unknown>([[[1, 2], "pair"]]);
  await raw.send([0, 2, "echo", [arrayKey]]);
  assert.deepEqual(await raw.receive(), [1, 2, null, arrayKey]);
  // msgpackr's record and structured-clone extension types are plain extensions here.
  for (const type of [0x65, 0x69, 0x72, 0x73, 0x74, 0x78]) {
    await raw.send([0, 3, "echo", [new Ext(type, new Uint8Array([1, 2, 3]))]]);
    assert.deepEqual(await raw.receive(), [1, 3, null, new Ext(type, new Uint8Array([1, 2, 3]))]);
  }
  // Nesting 10,000 levels deep: refused with the msgid, and the connection goes on.
  const deep = new Uint8Array(10_000).fill(0x91);
  await raw.write(
    new Uint8Array([
      0x94,
      0x00,
      0x04,
      0xa4,
      ...new TextEncoder().encode("echo"),
      0x91,
      ...deep,
      0xc0,
    ]),
  );
  const [type, msgid, error] = await raw.receive() as Response;
  assert.deepEqual([type, msgid, error?.code], [1, 4, "INVALID_PARAMS"]);
  assert.match(error!.message, /nested deeper than 512 levels/);
  await raw.send([0, 5, "ping", []]);
  assert.deepEqual(await raw.receive(), [1, 5, null, "pong"]);
  assert.equal(await slow, null, "the other client's request on the same worker was answered");
  const s = await p.stats();
  assert.equal(s.totals.worker_exits, 0);
  assert.equal(s.workers[0]!.restarts, 0);
  other.close();
});

Deno.test("sleep, fail and crash are off unless --test-methods: no client can crash a worker", async () => {
  await using p = await startProxy(["--workers", "1"]);
  for (const method of ["crash", "sleep", "fail", "spin"]) {
    const err = await errorOf(p.client.call(method, [1]));
    assert.equal(err.code, "METHOD_NOT_FOUND", method);
  }
  assert.equal((await p.stats()).totals.worker_exits, 0);
});

Deno.test("proxy.reload is FORBIDDEN without --control-methods; SIGHUP still reloads; proxy.stats stays open", async () => {
  await using p = await startProxy(["--workers", "1"]);
  const err = await errorOf(p.client.call("proxy.reload"));
  assert.equal(err.code, "FORBIDDEN");
  assert.match(err.message, /--control-methods/);
  const before = (await p.stats()).workers[0]!.pid;
  p.proc.kill("SIGHUP");
  await eventually("worker replaced", async () => {
    const w = (await p.stats()).workers.filter((w) => w.state === "ready");
    return w.length === 1 && w[0]!.pid !== before;
  });
  await using allowed = await startProxy(["--workers", "1", "--control-methods"]);
  assert.deepEqual(await allowed.client.call("proxy.reload"), { replaced: 1, failed: 0 });
});

Deno.test("a worker that is ready and then dies on every request ends in a crash loop, with its real exit reason logged", async () => {
  await using p = await startProxy([
    ...["--workers", "1", "--handler", "tests/testdata/dying_handler.ts"],
    ...["--crash-loop-threshold", "3", "--crash-loop-window", "30s", "--crash-loop-cooldown", "1m"],
  ]);
  await eventually("crash loop", async () => {
    const s = await p.stats();
    if (s.workers[0]!.state === "crash-loop") return true;
    if (s.workers[0]!.state === "ready") await p.client.call("die").catch(() => {});
    return false;
  });
  const line = await p.proc.waitForLine(
    /crash-looping: it exited 3 times within 30000 ms.*Last exit: (.*)/,
  );
  assert.match(line[1]!, /exited with code 3/);
  assert.match(line[1]!, /dying on purpose/);
  const err = await errorOf(p.client.call("echo", [1]));
  assert.equal(err.code, "NO_WORKERS");
  assert.match(err.message, /exited with code 3/);
});

Deno.test("negative msgids are answered from the queue too (QUEUE_FULL, QUEUE_TIMEOUT), and the connection is released", async () => {
  await using p = await startProxy([
    ...["--workers", "1", "--test-methods", "--max-in-flight-per-worker", "1"],
    ...["--queue-size", "1", "--queue-timeout", "200ms"],
  ]);
  {
    await using raw = await RawConnection.open(p.address);
    await raw.send([0, -5, "sleep", [500]]);
    await eventually("sleep in flight", async () => (await p.stats()).workers[0]!.in_flight === 1);
    await raw.send([0, -6, "echo", ["queued"]]);
    await raw.send([0, -7, "echo", ["too many"]]);
    const answers = [await raw.receive(), await raw.receive(), await raw.receive()] as Response[];
    const byId = new Map(answers.map((a) => [a[1], a[2]?.code ?? a[3]]));
    assert.deepEqual(
      byId,
      new Map<unknown, unknown>([[-7, "QUEUE_FULL"], [-6, "QUEUE_TIMEOUT"], [-5, null]]),
    );
  }
  await eventually("connection released", async () => (await p.stats()).connections.open === 1);
});

Deno.test("a msgid beyond 2^53 is answered INVALID_REQUEST with that msgid; a msgid that is no integer closes unanswered", async () => {
  await using p = await startProxy(["--workers", "1"]);
  {
    await using raw = await RawConnection.open(p.address);
    await raw.send([0, 2n ** 63n, "echo", [1]]);
    const answers = await raw.receiveAll() as Response[];
    assert.equal(answers.length, 1);
    assert.equal(answers[0]![1], 2n ** 63n, "the msgid is echoed exactly");
    assert.equal(answers[0]![2]!.code, "INVALID_REQUEST");
  }
  for (const msgid of [1.5, "7", null]) {
    await using raw = await RawConnection.open(p.address);
    await raw.send([0, 1, "echo", ["before"]]);
    await raw.send([0, msgid, "echo", [1]]);
    assert.deepEqual(await raw.receiveAll(), [[1, 1, null, "before"]], `msgid ${msgid}`);
  }
  assert.equal(await p.client.call("echo", ["fine"]), "fine");
});

Deno.test("a message of --max-message-size bytes reaches a built-in worker, msgid rewrite included; 4 GiB is refused at start", async () => {
  await using p = await startProxy(["--workers", "1", "--max-message-size", "1k"]);
  await using raw = await RawConnection.open(p.address);
  for (const size of [1024, 1023]) {
    // [0, 0, "echo", [bin]]: msgid 0 takes 1 byte; the proxy's own takes more.
    const bin = new Uint8Array(size - 12);
    const frame = encodeValue([0, 0, "echo", [bin]]);
    assert.equal(frame.length, size);
    await raw.write(frame);
    assert.deepEqual(await raw.receive(), [1, 0, null, bin], `size ${size}`);
  }
  assert.equal((await p.stats()).totals.worker_exits, 0);
  const big = await runProgram(["serve", "--port", "0", "--max-message-size", "4g"]);
  assert.equal(big.code, 2, big.stderr);
  assert.match(big.stderr, /--max-message-size.*expected a size from 64 to 4294967295/);
});

Deno.test("--max-message-size above the default reaches the built-in workers", async () => {
  await using p = await startProxy(["--workers", "1", "--max-message-size", "64m"]);
  const client = await RpcClient.connect(p.address, { maxMessageSize: 64 * 1024 * 1024 });
  const payload = new Uint8Array(10 * 1024 * 1024).fill(7);
  assert.deepEqual(await client.call("echo", [payload]), payload);
  client.close();
});

Deno.test("a worker that stops reading gets no more than --worker-write-limit, and the other worker takes the load", async () => {
  await using p = await startProxy([
    ...["--workers", "2", "--worker-cmd", `python3 ${PY_WORKER} {socket}`],
    ...[
      "--worker-write-limit",
      "64k",
      "--max-in-flight-per-worker",
      "100000",
      "--request-timeout",
      "1s",
    ],
    ...["--queue-size", "100000"],
  ]);
  const stuck = await p.client.call("stop_reading") as number;
  const client = await RpcClient.connect(p.address);
  const payload = new Uint8Array(16 * 1024).fill(1);
  const results = await Promise.all(
    Array.from(
      { length: 400 },
      () => client.call("echo", [payload]).then(() => "ok", (e) => e.code),
    ),
  );
  const counts = Object.groupBy(results, (r) => r);
  assert.ok((counts.ok?.length ?? 0) >= 300, JSON.stringify(Object.keys(counts)));
  const s = await p.stats();
  const worker = s.workers.find((w) => w.pid === stuck)!;
  assert.ok(worker.unwritten_bytes <= 64 * 1024 + 17 * 1024, `unwritten ${worker.unwritten_bytes}`);
  client.close();
});

Deno.test("a connection that sends part of a message and stalls is closed after --message-timeout (MessagePack, legacy, backend)", async () => {
  await using p = await startProxy(["--workers", "1", "--message-timeout", "300ms"]);
  {
    await using raw = await RawConnection.open(p.address);
    await raw.write(encodeValue([0, 1, "echo", ["x".repeat(100)]]).subarray(0, 20));
    assert.equal(await raw.receive(3000), null, "closed");
  }
  {
    await using raw = await RawConnection.open(p.address);
    const frame = encodeLegacyFrame({
      bodyType: 0x30,
      msgType: 0,
      flowNo: 1,
      funcNo: 1000,
      errNo: 0,
    }, new Uint8Array(50));
    await raw.write(frame.subarray(0, 30));
    assert.equal(await raw.receive(3000), null, "closed");
  }
  assert.equal((await p.stats()).connections.message_timeouts, 2);
  await using dir = await tempDir();
  await using backend = spawnProgram([
    "backend",
    "--message-timeout",
    "300ms",
    "--socket",
    dir.join("w.sock"),
  ]);
  const address = await waitListening(backend);
  await using raw = await RawConnection.open(address);
  await raw.write(encodeValue([0, 1, "echo", ["y".repeat(100)]]).subarray(0, 20));
  assert.equal(await raw.receive(3000), null, "closed");
});

Deno.test("--client-idle-timeout closes a connection idle between messages, not one waiting for its answer", async () => {
  await using p = await startProxy([
    "--workers",
    "1",
    "--test-methods",
    "--client-idle-timeout",
    "300ms",
  ]);
  await using idle = await RawConnection.open(p.address);
  await idle.send([0, 1, "ping", []]);
  assert.deepEqual(await idle.receive(), [1, 1, null, "pong"]);
  const waiting = await RpcClient.connect(p.address);
  assert.equal(
    await waiting.call("sleep", [800]),
    null,
    "answered although longer than the idle timeout",
  );
  assert.equal(await idle.receive(3000), null, "the idle one was closed");
  waiting.close();
});

Deno.test("backend --max-connections closes connections beyond the limit at once", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram([
    "backend",
    "--max-connections",
    "2",
    "--socket",
    dir.join("w.sock"),
  ]);
  const address = await waitListening(backend);
  const held = [await RawConnection.open(address), await RawConnection.open(address)];
  for (const [i, c] of held.entries()) {
    await c.send([0, i, "ping", []]);
    assert.deepEqual(await c.receive(), [1, i, null, "pong"]);
  }
  await using third = await RawConnection.open(address);
  assert.equal(await third.receive(3000), null, "refused");
  for (const c of held) c.close();
  await eventually("a place again", async () => {
    await using c = await RawConnection.open(address);
    await c.send([0, 9, "ping", []]);
    return (await c.receive(3000)) !== null;
  });
});

Deno.test("--max-connections is kept within the open-file limit: beyond it, connections are refused at once", async () => {
  const args = programArgs("serve", "--port", "0", "--workers", "2", "--max-connections", "1000");
  const script = `ulimit -n 128 && exec ${[Deno.execPath(), ...args].map(quote).join(" ")}`;
  await using sh = spawnCommand("sh", ["-c", script]);
  const address = await waitListening(sh);
  const line = await sh.waitForLine(/holding at most (\d+) connections/);
  const fits = Number(line[1]);
  assert.equal(fits, 128 - 64 - 2 * 4);
  const conns: RawConnection[] = [];
  try {
    for (let i = 0; i < fits; i++) conns.push(await RawConnection.open(address));
    await using over = await RawConnection.open(address);
    assert.equal(await over.receive(3000), null, "refused at once, not left hanging");
    await conns[0]!.send([0, 1, "ping", []]);
    assert.deepEqual(await conns[0]!.receive(), [1, 1, null, "pong"]);
  } finally {
    for (const c of conns) c.close();
  }
});

Deno.test("a connection pipelining thousands of requests slows only itself: no QUEUE_FULL for anyone", async () => {
  await using p = await startProxy([
    ...["--workers", "1", "--max-in-flight-per-worker", "4", "--queue-size", "16"],
    ...["--max-in-flight-per-connection", "8"],
  ]);
  await using greedy = await RawConnection.open(p.address);
  const n = 2000;
  const burst: number[] = [];
  for (let i = 0; i < n; i++) burst.push(...encodeValue([0, i, "echo", [i]]));
  const writing = greedy.write(new Uint8Array(burst));
  const polite = await RpcClient.connect(p.address);
  for (let i = 0; i < 50; i++) assert.equal(await polite.call("echo", [i]), i);
  await writing;
  const answers: Response[] = [];
  while (answers.length < n) answers.push(await greedy.receive() as Response);
  assert.deepEqual(
    answers.filter((a) => a[2] !== null),
    [],
    "no error for the greedy client either",
  );
  assert.equal((await p.stats()).totals.queue_full, 0);
  polite.close();
});

Deno.test("the socket directory of a proxy killed with SIGKILL is removed by the next proxy", async () => {
  const first = await startProxy(["--workers", "1"]);
  const dir = (await first.stats()).socket_dir!;
  first.client.close();
  first.proc.kill("SIGKILL");
  await first.proc.waitExit();
  await first[Symbol.asyncDispose]();
  // Only directories older than a few seconds are judged: age this one.
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(`${dir}/owner.lock`, old, old);
  await using second = await startProxy(["--workers", "1"]);
  await second.proc.waitForLine(new RegExp(`Removed a stale socket directory: ${dir}`));
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  assert.ok((await Deno.stat((await second.stats()).socket_dir!)).isDirectory, "its own is kept");
});

Deno.test("proxy.stats counts legacy connections in connections.total too", async () => {
  await using p = await startProxy(["--workers", "1"]);
  const before = (await p.stats()).connections.total;
  {
    await using raw = await RawConnection.open(p.address);
    const frame = encodeLegacyFrame({
      bodyType: 0x30,
      msgType: 0,
      flowNo: 1,
      funcNo: 2000,
      errNo: 0,
    }, new TextEncoder().encode("{}"));
    await raw.write(frame);
    await eventually(
      "legacy counted",
      async () => (await p.stats()).connections.total === before + 1,
    );
  }
});

Deno.test("--ready-check connect serves a worker that never answers ping; the ping check's error says what it waited for", async () => {
  const env = { PY_WORKER_NO_PING: "1", PY_WORKER_SILENT_UNKNOWN: "1" };
  const failed = await runProgram(
    [
      "serve",
      "--port",
      "0",
      "--workers",
      "1",
      "--worker-cmd",
      `python3 ${PY_WORKER} {socket}`,
      "--worker-start-timeout",
      "1s",
    ],
    { env },
  );
  assert.notEqual(failed.code, 0);
  assert.match(
    failed.stderr,
    /not ready within 1000 ms \(waited for its socket to accept and it to answer ping \(--ready-check ping\)\)/,
  );
  await using p = await startProxy(
    ["--workers", "1", "--worker-cmd", `python3 ${PY_WORKER} {socket}`, "--ready-check", "connect"],
    { env },
  );
  assert.equal(await p.client.call("echo", ["ready"]), "ready");
});

Deno.test("a worker that ignores the shutdown notification is killed after --shutdown-grace, and the log says so", async () => {
  await using p = await startProxy(
    [
      "--workers",
      "1",
      "--worker-cmd",
      `python3 ${PY_WORKER} {socket}`,
      "--shutdown-grace",
      "300ms",
    ],
    { env: { PY_WORKER_IGNORE_SHUTDOWN: "1" } },
  );
  p.proc.kill("SIGTERM");
  const status = await p.proc.waitExit();
  assert.equal(status.code, 0);
  assert.match(p.proc.stderr, /did not exit within 300 ms.*killing it with SIGKILL/);
});

Deno.test("pynvim talks to the proxy: its bin method name is accepted, values come back exact, errors read as [code, message]", async () => {
  const python = await pythonWith("pynvim", "msgpack");
  await using p = await startProxy(["--workers", "1", "--test-methods", "--error-format", "array"]);
  const { hostname, port } = splitHostPort(p.address);
  const out = JSON.parse(
    await runPython(python, [
      `${REPO_ROOT}/tests/testdata/pynvim_client.py`,
      hostname,
      String(port),
    ]),
  ) as Record<string, unknown>;
  assert.deepEqual(
    {
      echo_big: out.echo_big,
      echo_neg: out.echo_neg,
      echo_float: out.echo_float,
      echo_bytes: out.echo_bytes,
    },
    { echo_big: true, echo_neg: true, echo_float: true, echo_bytes: true },
  );
  assert.match(String(out.error), /boom from pynvim/);
  // Our own client reads the array form too.
  const err = await errorOf(p.client.call("fail", ["array form"]));
  assert.deepEqual([err.code, err.message], ["HANDLER_ERROR", "array form"]);
});

Deno.test("a worker that sends requests and notifications with bin method names is answered and kept", async () => {
  await using p = await startProxy(
    ["--workers", "1", "--worker-cmd", `python3 ${PY_WORKER} {socket}`],
    { env: { PY_WORKER_GREET: "1" } },
  );
  await p.proc.waitForLine(/greeting answered: METHOD_NOT_FOUND/);
  assert.equal(await p.client.call("echo", [2n ** 64n - 1n]), 2n ** 64n - 1n);
  const s = await p.stats();
  assert.equal(s.totals.worker_exits, 0);
});

Deno.test("Neovim as a worker: ready on its error answer to ping, its errors pass through, and its SIGKILL at stop is logged", async () => {
  await using p = await startProxy([
    ...["--workers", "1", "--worker-cmd", "nvim --headless --clean --listen {socket}"],
    ...["--shutdown-grace", "500ms"],
  ]);
  assert.equal(await p.client.call("nvim_eval", ["1+1"]), 2);
  const err = await errorOf(p.client.call("nvim_eval", ["no_such_function()"]));
  assert.match(err.message, /E117: Unknown function/);
  p.proc.kill("SIGTERM");
  assert.equal((await p.proc.waitExit()).code, 0);
  const killed = p.proc.stderrLines.filter((l) => /did not exit within 500 ms.*SIGKILL/.test(l));
  assert.equal(killed.length, 1, p.proc.stderr);
});

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

Deno.test("a worker busy with a request that timed out is not taken for idle", async () => {
  await using p = await startProxy([
    "--workers",
    "2",
    "--test-methods",
    "--request-timeout",
    "150ms",
  ]);
  const slow = await errorOf(p.client.call("sleep", [3000]));
  assert.equal(slow.code, "TIMEOUT");
  // The worker still sleeping has one request on it; the other has none: every
  // new request goes to the other one while it has fewer.
  const pids = new Set<number>();
  for (let i = 0; i < 6; i++) pids.add((await p.client.call("info") as { pid: number }).pid);
  assert.equal(pids.size, 1, "all to the worker that is not busy");
  const s = await p.stats();
  const sleeper = s.workers.find((w) => !pids.has(w.pid!))!;
  assert.equal(sleeper.served, 0, "the sleeping worker got nothing more");
});
