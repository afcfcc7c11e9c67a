/**
 * End-to-end tests of `proxy serve`: the real program, real worker
 * processes, real sockets.
 */

import assert from "node:assert/strict";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { encodeRequest } from "../lib/protocol/message.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";
import { ProxyError } from "../lib/protocol/errors.ts";
import { exists, runProgram, spawnProgram, waitListening } from "./helpers/process.ts";
import { errorOf, eventually } from "./helpers/wait.ts";
import { RawConnection } from "./helpers/raw_conn.ts";

function serveArgs(...extra: string[]): string[] {
  return [
    "serve",
    "--port",
    "0",
    "--workers",
    "2",
    "--test-methods",
    "--log-level",
    "warning",
    ...extra,
  ];
}

// The proxy logs its listening line at info: keep info for the readiness wait.
async function startProxy(...extra: string[]) {
  const proc = spawnProgram(["serve", "--port", "0", "--workers", "2", "--test-methods", ...extra]);
  const address = await waitListening(proc);
  return { proc, address };
}

async function stats(client: RpcClient): Promise<ProxyStats> {
  return await client.call("proxy.stats") as ProxyStats;
}

function isRunning(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat); // a zombie is not running
  } catch {
    return false;
  }
}

Deno.test("serve answers through proxy client and the library client", async () => {
  const { proc, address } = await startProxy();
  await using _ = proc;
  const [host, port] = [
    address.slice(0, address.lastIndexOf(":")),
    address.slice(address.lastIndexOf(":") + 1),
  ];
  const cli = await runProgram(["client", host, port, "echo", "hello"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(cli.stdout.trim(), '"hello"');

  const client = await RpcClient.connect(address);
  try {
    assert.equal(await client.call("ping"), "pong");
    assert.deepEqual(await client.call("echo", [{ nested: [1, "two", null] }]), {
      nested: [1, "two", null],
    });
    const s = await stats(client);
    assert.equal(s.workers.length, 2);
    assert.ok(s.workers.every((w) => w.state === "ready" && typeof w.pid === "number"));
  } finally {
    client.close();
  }
});

Deno.test("serve keeps one read's cheap requests on one busy worker, and spreads slow ones", async () => {
  type Answer = [number, number, unknown, unknown];
  // Requests in one write, so that the proxy reads them in one batch.
  async function batch(raw: RawConnection, n: number, method: string, params: unknown[]) {
    const frames = Array.from({ length: n }, (_, i) => encodeRequest(i + 1, method, params));
    const bytes = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0));
    frames.reduce((at, f) => (bytes.set(f, at), at + f.length), 0);
    await raw.write(bytes);
    const answers: Answer[] = [];
    for (let i = 0; i < n; i++) answers.push(await raw.receive() as Answer);
    return answers;
  }
  const pids = (answers: Answer[]) => new Set(answers.map((a) => (a[3] as { pid: number }).pid));
  // A bound far from both info's pace and sleep(200)'s (12,500 us per answer, 16 at once).
  const { proc, address } = await startProxy("--keep-batch-below", "5000");
  await using _ = proc;
  await using raw = await RawConnection.open(address);
  const client = await RpcClient.connect(address);
  try {
    // Not measured yet: spread one by one, 32 answers each, and measured
    // (twice more, so that a cold first window has been pulled down).
    assert.equal(pids(await batch(raw, 64, "info", [])).size, 2);
    for (let i = 0; i < 2; i++) await batch(raw, 64, "info", []);
    const measured = (await stats(client)).workers.map((w) => w.pace_us);
    assert.ok(measured.every((us) => us > 0 && us < 5000), `quick: ${measured}`);
    // With both workers busy (a long request each), a cheap batch stays on one.
    await using other = await RawConnection.open(address);
    const busy = batch(other, 2, "sleep", [2000]);
    await eventually(
      "a request at each worker",
      async () => (await stats(client)).workers.every((w) => w.in_flight > 0) || undefined,
    );
    assert.equal(pids(await batch(raw, 16, "info", [])).size, 1, "a cheap batch stays together");
    // Slow requests: once a worker is measured slow, a batch of them is spread.
    for (let i = 0; i < 4 && !(await stats(client)).workers.every((w) => w.pace_us > 5000); i++) {
      await batch(raw, 16, "sleep", [200]);
    }
    const before = await stats(client);
    assert.ok(before.workers.every((w) => w.pace_us > 5000), JSON.stringify(before.workers));
    await batch(raw, 16, "sleep", [200]);
    const after = await stats(client);
    const took = after.workers.map((w, i) => w.served - before.workers[i]!.served);
    assert.ok(took.every((n) => n > 0), `a slow batch is spread: ${took}`);
    await busy;
  } finally {
    client.close();
  }
});

Deno.test("serve answers 200 pipelined requests from several connections with the right msgid and payload", async () => {
  const { proc, address } = await startProxy();
  await using _ = proc;
  const clients = await Promise.all([0, 1, 2, 3].map(() => RpcClient.connect(address)));
  try {
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const client = clients[i % clients.length]!;
      const payload = { i, data: "x".repeat(i) };
      // Mixed sleeps make workers answer out of order.
      const p = i % 5 === 0
        ? client.call("sleep", [(i * 7) % 40]).then((r) => assert.equal(r, null))
        : client.call("echo", [payload]).then((r) => assert.deepEqual(r, payload));
      calls.push(p);
    }
    await Promise.all(calls);
    // Chosen msgids come back unchanged, in whatever order.
    await using raw = await RawConnection.open(address);
    await raw.send([0, 4000000000, "sleep", [30]]);
    await raw.send([0, 7, "echo", ["seven"]]);
    const got = [await raw.receive(), await raw.receive()];
    assert.deepEqual(got, [[1, 7, null, "seven"], [1, 4000000000, null, null]]);
    const s = await stats(clients[0]!);
    assert.ok(s.workers.every((w) => w.served > 0), "both workers took requests");
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("serve answers WORKER_EXITED for requests at a killed worker, replaces it and keeps serving", async () => {
  const { proc, address } = await startProxy();
  await using _ = proc;
  const client = await RpcClient.connect(address);
  try {
    const before = await stats(client);
    const sleeps = Array.from(
      { length: 6 },
      () => client.call("sleep", [20_000]).then(() => "ok", (e) => e),
    );
    const victim = await eventually("requests in flight at both workers", async () => {
      const s = await stats(client);
      return s.workers.every((w) => w.in_flight > 0) ? s.workers[0]! : undefined;
    });
    Deno.kill(victim.pid!, "SIGKILL");
    // Only the victim's requests fail, at once.
    const outcomes = await Promise.race([
      Promise.all(sleeps.slice(0)).then(() => "all settled"),
      eventually("victim's requests failing", async () => {
        const s = await stats(client);
        const w = s.workers.find((x) => x.id === victim.id)!;
        return w.restarts === 1 ? "restarted" : undefined;
      }),
    ]);
    assert.equal(outcomes, "restarted");
    const settled = await Promise.all(
      sleeps.map((p) => Promise.race([p, new Promise((r) => setTimeout(() => r("pending"), 50))])),
    );
    const exited = settled.filter((o) => o instanceof ProxyError && o.code === "WORKER_EXITED");
    assert.equal(
      exited.length,
      victim.in_flight,
      `victim had ${victim.in_flight} in flight: ${settled}`,
    );
    assert.ok(
      settled.filter((o) => o === "pending").length > 0,
      "the other worker's requests are untouched",
    );
    // The connection stays open and later requests succeed.
    assert.equal(await client.call("echo", ["after"]), "after");
    const after = await eventually("replacement ready", async () => {
      const s = await stats(client);
      const w = s.workers.find((x) => x.id === victim.id)!;
      return w.state === "ready" ? s : undefined;
    });
    const replaced = after.workers.find((w) => w.id === victim.id)!;
    assert.notEqual(replaced.pid, victim.pid);
    assert.equal(replaced.restarts, 1);
    assert.equal(after.totals.worker_exits, before.totals.worker_exits + 1);
    assert.ok(!isRunning(victim.pid!));
  } finally {
    client.close();
  }
});

Deno.test("serve runs a --worker-cmd worker written in Python", async () => {
  const python = await new Deno.Command("python3", { args: ["--version"] }).output().catch(() =>
    null
  );
  if (!python?.success) throw new Error("python3 is needed for this test");
  const { proc, address } = await startProxy(
    "--worker-cmd",
    "python3 tests/testdata/py_worker.py {socket}",
  );
  await using _ = proc;
  const client = await RpcClient.connect(address);
  try {
    const who = await client.call("whoami") as { impl: string; pid: number };
    assert.equal(who.impl, "python");
    assert.deepEqual(await client.call("echo", [{ a: [1, 2.5, "x"] }]), { a: [1, 2.5, "x"] });
    const err = await errorOf(client.call("nope"));
    assert.equal(err.code, "METHOD_NOT_FOUND");
    const s = await stats(client);
    assert.ok(s.workers.some((w) => w.pid === who.pid));
  } finally {
    client.close();
  }
});

Deno.test("serve drains a request in flight on SIGTERM, then exits 0 and removes its sockets", async () => {
  const { proc, address } = await startProxy();
  await using _ = proc;
  const client = await RpcClient.connect(address);
  const s = await stats(client);
  assert.ok(await exists(s.socket_dir!));
  const slow = client.call("sleep", [400]);
  await eventually(
    "sleep in flight",
    async () => (await stats(client)).workers.some((w) => w.in_flight > 0) || undefined,
  );
  proc.kill("SIGTERM");
  assert.equal(await slow, null, "the request in flight was answered");
  const status = await proc.waitExit();
  assert.equal(status.code, 0, proc.stderr);
  assert.equal(await exists(s.socket_dir!), false, "socket directory removed");
  for (const w of s.workers) assert.ok(!isRunning(w.pid!), `worker ${w.pid} stopped`);
  client.close();
});

Deno.test("serve killed with SIGKILL leaves no worker running", async () => {
  const { proc, address } = await startProxy();
  await using _ = proc;
  const client = await RpcClient.connect(address);
  const s = await stats(client);
  const pids = s.workers.map((w) => w.pid!);
  client.close();
  proc.kill("SIGKILL");
  await proc.waitExit();
  await eventually(
    "workers gone",
    () => Promise.resolve(pids.every((p) => !isRunning(p)) || undefined),
    3000,
  );
  // Nothing can clean up after SIGKILL: the test removes the socket directory.
  await Deno.remove(s.socket_dir!, { recursive: true }).catch(() => {});
});

Deno.test("serve answers QUEUE_FULL and QUEUE_TIMEOUT when every worker is busy", async () => {
  const { proc, address } = await startProxy(
    "--workers",
    "1",
    "--max-in-flight-per-worker",
    "1",
    "--queue-size",
    "1",
    "--queue-timeout",
    "300ms",
  );
  await using _ = proc;
  const client = await RpcClient.connect(address);
  try {
    const busy = client.call("sleep", [3000]);
    await eventually(
      "worker busy",
      async () => (await stats(client)).workers[0]!.in_flight === 1 || undefined,
    );
    const queued = errorOf(client.call("echo", ["queued"]));
    const full = await errorOf(client.call("echo", ["rejected"]));
    assert.equal(full.code, "QUEUE_FULL");
    assert.equal((await queued).code, "QUEUE_TIMEOUT");
    const s = await stats(client);
    assert.equal(s.totals.queue_full, 1);
    assert.equal(s.totals.queue_timeouts, 1);
    assert.equal(await busy, null);
  } finally {
    client.close();
  }
});

Deno.test("serve rejects a malformed request on one connection and keeps serving others", async () => {
  const { proc, address } = await startProxy();
  await using _ = proc;
  await using bad = await RawConnection.open(address);
  await bad.send([0, 42, 17, []]); // method is not a string
  assert.deepEqual(
    await bad.receive(),
    [
      1,
      42,
      { code: "INVALID_REQUEST", message: "Cannot accept request: method is not a string" },
      null,
    ],
  );
  await using garbage = await RawConnection.open(address);
  await garbage.write(new Uint8Array([0xc1, 0xc1]));
  assert.deepEqual(await garbage.receiveAll(), [], "closed without an answer: no msgid known");
  const client = await RpcClient.connect(address);
  try {
    assert.equal(await client.call("echo", ["still fine"]), "still fine");
    const err = await errorOf(client.call("proxy.nothing"));
    assert.equal(err.code, "METHOD_NOT_FOUND");
  } finally {
    client.close();
  }
});

Deno.test("serve reports start errors clearly and exits nonzero", async (t) => {
  await t.step("port in use", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const r = await runProgram(serveArgs("--port", String((listener.addr as Deno.NetAddr).port)));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /in use/i);
    } finally {
      listener.close();
    }
  });
  await t.step("bad flag values exit 2", async () => {
    for (
      const args of [["--workers", "5000"], ["--port", "70000"], ["--queue-timeout", "soon"], [
        "--bogus",
      ]]
    ) {
      const r = await runProgram(serveArgs(...args));
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
    }
  });
  await t.step(
    "every value out of range exits 2 with the flag and the range, none with an internal message",
    async () => {
      const cases: [string[], RegExp][] = [
        [["--queue-timeout", "0"], /--queue-timeout.*expected a duration from 1ms to/],
        [["--request-timeout", "99999999999h"], /--request-timeout.*expected a duration from 0 to/],
        [["--max-message-size", "5g"], /--max-message-size.*from 64 to 4294967295/],
        [["--min-spare", "5", "--max-spare", "2"], /--min-spare: 5 is above --max-spare 2/],
        [["--ready-check", "maybe"], /--ready-check.*expected one of ping, connect/],
        [["--error-format", "json"], /--error-format.*expected one of map, array/],
        [["--route-key", "a..b"], /--route-key.*empty segment/],
        [["--method-timeout", "echo"], /--method-timeout.*expected NAME=DURATION/],
        [["--max-in-flight-per-connection", "0"], /--max-in-flight-per-connection/],
      ];
      const results = await Promise.all(cases.map(([args]) => runProgram(serveArgs(...args))));
      for (const [i, [args, pattern]] of cases.entries()) {
        assert.equal(results[i]!.code, 2, `${args}: ${results[i]!.stderr}`);
        assert.match(results[i]!.stderr, pattern, args.join(" "));
        assert.doesNotMatch(results[i]!.stderr, /RangeError|at .*\.ts:\d+/, args.join(" "));
      }
    },
  );
  await t.step("--help shows defaults as the README writes them", async () => {
    const r = await runProgram(["serve", "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--queue-timeout <duration>.*\(default: 10s\)/);
    assert.match(r.stdout, /--write-buffer-limit <bytes>.*\(default: 4MiB\)/);
    assert.match(r.stdout, /--workers <n>.*\(default: number of CPUs\)/);
    assert.doesNotMatch(r.stdout, /default: \[\]|default: \{\}|default: 4194304|default: 30000/);
    for (const cmd of ["backend", "client", "test"]) {
      const h = await runProgram([cmd, "--help"]);
      assert.doesNotMatch(h.stdout, /default: \[\]/, cmd);
    }
  });
  await t.step("worker command not found", async () => {
    const r = await runProgram(serveArgs("--worker-cmd", "/nonexistent/worker {socket}"));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /command not found: \/nonexistent\/worker/);
  });
  await t.step("workers that never become ready", async () => {
    const r = await runProgram(
      serveArgs("--worker-cmd", "sleep 30", "--worker-start-timeout", "300ms"),
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not ready within 300 ms/);
  });
  await t.step("workers that exit at start, with their output", async () => {
    const r = await runProgram(serveArgs("--worker-cmd", "sh -c 'echo boom-at-start >&2; exit 3'"));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exited with code 3/);
    assert.match(r.stderr, /boom-at-start/);
  });
});

Deno.test("serve closes a connection that sends nothing within --first-byte-timeout", async () => {
  const { proc, address } = await startProxy(
    "--first-byte-timeout",
    "200ms",
    "--max-connections",
    "2",
  );
  await using _ = proc;
  await using silent = await RawConnection.open(address);
  assert.deepEqual(
    await silent.receiveAll(5000),
    [],
    "closed by the proxy, not by the test's timeout",
  );
  const client = await RpcClient.connect(address);
  try {
    assert.equal(await client.call("echo", ["after"]), "after");
    assert.equal((await stats(client)).connections.open, 1);
  } finally {
    client.close();
  }
});

Deno.test("serve stops on SIGTERM even while a client does not read its answers", async () => {
  const { proc, address } = await startProxy(
    "--workers",
    "1",
    "--drain-timeout",
    "300ms",
    "--shutdown-grace",
    "300ms",
  );
  await using _ = proc;
  // A client that sends many large requests and never reads.
  const conn = await Deno.connect({
    hostname: address.split(":")[0]!,
    port: Number(address.split(":")[1]),
  });
  try {
    // More than the kernel buffers and the proxy's high-water mark can hold.
    const payload = "x".repeat(100_000);
    const frames = Array.from({ length: 400 }, (_, i) => encodeRequest(i, "echo", [payload]));
    const writing = (async () => {
      for (const f of frames) await conn.write(f);
    })().catch(() => {});
    // Wait until the answers stop moving: the proxy holds some it cannot write.
    let last = -1;
    let still = 0;
    await eventually("answers stuck behind the client", async () => {
      const c = await RpcClient.connect(address);
      try {
        const answered = (await stats(c)).totals.answered;
        still = answered === last ? still + 1 : 0;
        last = answered;
        return (answered > 20 && still >= 5) || undefined;
      } finally {
        c.close();
      }
    });
    proc.kill("SIGTERM");
    const status = await proc.waitExit(10_000);
    assert.equal(status.code, 0, proc.stderr);
    await writing;
  } finally {
    conn.close();
  }
});
