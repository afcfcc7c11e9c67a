/**
 * Running it as an operator would: `proxy serve --config proxy.toml --admin
 * HOST:PORT`, scraped by Prometheus's own checker (`promtool`, Debian's
 * `prometheus` package), reloaded with a changed and with a broken file under
 * load, drained while a load balancer watches `/readyz`, and the access log.
 */

import assert from "node:assert/strict";
import { RpcClient } from "../lib/client/rpc_client.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";
import {
  programArgs,
  runProgram,
  spawnCommand,
  spawnProgram,
  tempDir,
  waitListening,
} from "./helpers/process.ts";
import { eventually } from "./helpers/wait.ts";

/** A proxy started with a config file and an admin endpoint. */
async function serveWithAdmin(config: string, args: string[] = []) {
  const proc = spawnProgram(["serve", "--config", config, ...args]);
  try {
    const admin = (await proc.waitForLine(/Admin endpoint on (http:\/\/\S+?)\/? /))[1]!;
    const address = await waitListening(proc);
    return { proc, admin, address };
  } catch (err) {
    await proc[Symbol.asyncDispose]();
    throw err;
  }
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text() };
}

async function status(admin: string): Promise<ProxyStats> {
  return JSON.parse((await get(`${admin}/status`)).body) as ProxyStats;
}

/** Clients calling `echo` back to back until stopped; every answer checked. */
function load(address: string, clients: number) {
  let running = true;
  let ok = 0;
  const errors: string[] = [];
  const done = Promise.all(Array.from({ length: clients }, async (_, i) => {
    const client = await RpcClient.connect(address);
    try {
      for (let n = 0; running; n++) {
        try {
          const v = await client.call("echo", [[i, n]]);
          if (JSON.stringify(v) === JSON.stringify([i, n])) ok++;
          else errors.push(`wrong answer ${JSON.stringify(v)}`);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    } finally {
      client.close();
    }
  }));
  return {
    get ok() {
      return ok;
    },
    async stop() {
      running = false;
      await done;
      return { ok, errors };
    },
  };
}

async function promtool(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("/metrics passes promtool and counts requests by method and code; /status, /healthz, /readyz answer", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/proxy.toml`;
  await Deno.writeTextFile(
    config,
    'port = 0\nworkers = 2\nadmin = "127.0.0.1:0"\ntest_methods = true\nmetrics_methods = 2\n',
  );
  const p = await serveWithAdmin(config);
  await using _p = p.proc;
  const client = await RpcClient.connect(p.address);
  try {
    for (let i = 0; i < 20; i++) await client.call("echo", [i]);
    await assert.rejects(client.call("fail", ["boom"]));
    await assert.rejects(client.call("no_such_method"));
    await client.call("ping");
  } finally {
    client.close();
  }
  const res = await fetch(`${p.admin}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const checked = await promtool(text);
  assert.equal(checked.code, 0, `promtool check metrics: ${checked.output}`);
  const sample = (line: string) =>
    Number(text.split("\n").find((l) => l.startsWith(`${line} `))?.slice(line.length + 1));
  assert.equal(sample('proxy_requests_total{method="echo",code="OK"}'), 20);
  assert.equal(sample('proxy_requests_total{method="fail",code="ERROR"}'), 1);
  // Only 2 methods get a label: the rest are "other".
  assert.equal(sample('proxy_requests_total{method="other",code="ERROR"}'), 1);
  assert.equal(sample('proxy_requests_total{method="other",code="OK"}'), 1);
  assert.equal(sample('proxy_request_duration_seconds_count{method="echo"}'), 20);
  assert.equal(sample('proxy_workers{state="ready"}'), 2);
  assert.equal(sample("proxy_worker_spawns_total"), 2);
  assert.ok(sample("proxy_received_bytes_total") > 0);
  assert.ok(sample("proxy_sent_bytes_total") > 0);
  assert.equal(sample("proxy_connections_total"), 1);

  const s = await status(p.admin);
  assert.equal(s.workers.length, 2);
  assert.equal(s.totals.requests, 23);
  assert.deepEqual(await get(`${p.admin}/healthz`), { status: 200, body: "ok\n" });
  assert.deepEqual(await get(`${p.admin}/readyz`), { status: 200, body: "ready\n" });
  assert.equal((await get(`${p.admin}/nothing`)).status, 404);
  assert.equal((await get(`${p.admin}/reload`)).status, 405, "reload is POST only");
});

Deno.test("/readyz turns 503 while the proxy drains, and requests in flight still finish", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/proxy.toml`;
  await Deno.writeTextFile(
    config,
    'port = 0\nworkers = 1\nadmin = "127.0.0.1:0"\ntest_methods = true\ndrain_timeout = "20s"\n',
  );
  const p = await serveWithAdmin(config);
  await using _p = p.proc;
  assert.equal((await get(`${p.admin}/readyz`)).status, 200);
  const client = await RpcClient.connect(p.address);
  try {
    // Long enough to watch the drain.
    const slow = client.call("sleep", [1500]);
    await eventually(
      "the request in flight",
      async () => (await status(p.admin)).workers[0]!.in_flight === 1,
    );
    p.proc.kill("SIGTERM");
    const seen = await eventually("readyz 503", async () => {
      const r = await get(`${p.admin}/readyz`);
      return r.status === 503 ? r.body : undefined;
    });
    assert.equal(seen, "not ready: draining\n");
    assert.equal((await get(`${p.admin}/healthz`)).status, 200, "alive while draining");
    assert.equal(await slow, null, "the request in flight is answered");
  } finally {
    client.close();
  }
  assert.equal((await p.proc.status).code, 0);
});

Deno.test("a changed config file reloaded under load: workers, upstreams and timeouts change with no request failing; a broken file is refused and changes nothing", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/proxy.toml`;
  const tokenFile = `${dir.path}/admin-token`;
  await Deno.writeTextFile(tokenFile, "# admin tokens\nfirst-secret\n");
  const write = (extra: string) =>
    Deno.writeTextFile(
      config,
      `port = 0\nadmin = "127.0.0.1:0"\nadmin_token_file = "${tokenFile}"\nqueue_size = 10000\n${extra}`,
    );
  await write("workers = 2\n");
  const upstream = spawnProgram(["backend", "--listen", "127.0.0.1:0"]);
  await using _u = upstream;
  const upstreamAddress = await waitListening(upstream);
  const p = await serveWithAdmin(config);
  await using _p = p.proc;
  const traffic = load(p.address, 8);
  try {
    await eventually("traffic", () => Promise.resolve(traffic.ok > 200));

    // 1. More workers, an upstream, a timeout: by SIGHUP.
    await write(`workers = 3\nrequest_timeout = "5s"\nupstream = ["tcp:${upstreamAddress}"]\n`);
    let from = p.proc.stderrLines.length;
    p.proc.kill("SIGHUP");
    await p.proc.waitForLine(/Reload done/, { from, timeoutMs: 30_000 });
    let s = await status(p.admin);
    assert.equal(s.workers.filter((w) => w.state === "ready").length, 3);
    assert.deepEqual(s.upstreams.map((u) => [u.address, u.state]), [[upstreamAddress, "healthy"]]);
    const served = s.upstreams[0]!.served;
    await eventually(
      "the upstream taking requests",
      async () => (await status(p.admin)).upstreams[0]!.served > served + 50,
    );

    // 2. A broken file: refused, logged, nothing changes, no request fails.
    await Deno.writeTextFile(config, "workers = [\n");
    from = p.proc.stderrLines.length;
    p.proc.kill("SIGHUP");
    const refused = await p.proc.waitForLine(/Reload refused: (.*)/, { from });
    assert.match(refused[1]!, /proxy\.toml:\d: not valid TOML/);
    s = await status(p.admin);
    assert.equal(s.workers.filter((w) => w.state === "ready").length, 3);
    assert.equal(s.upstreams.length, 1);

    // 3. POST /reload needs the admin token; it drops the upstream (drained) and a worker.
    await write("workers = 2\n");
    assert.equal((await get(`${p.admin}/reload`, { method: "POST" })).status, 401);
    const wrong = await get(`${p.admin}/reload`, {
      method: "POST",
      headers: { authorization: "Bearer second-secret" },
    });
    assert.equal(wrong.status, 401);
    const ok = await get(`${p.admin}/reload`, {
      method: "POST",
      headers: { authorization: "Bearer first-secret" },
    });
    assert.equal(ok.status, 200, ok.body);
    const report = JSON.parse(ok.body);
    assert.equal(report.ok, true);
    assert.deepEqual(report.applied.sort(), ["--request-timeout", "--upstream", "--workers"]);
    assert.equal(report.failed, 0);
    await eventually(
      "the upstream gone",
      async () => (await status(p.admin)).upstreams.length === 0,
    );
    s = await status(p.admin);
    assert.equal(s.workers.filter((w) => w.state === "ready").length, 2);

    // 4. A broken file through POST /reload: 400 with the reason.
    await write("workers = -1\n");
    const bad = await get(`${p.admin}/reload`, {
      method: "POST",
      headers: { authorization: "Bearer first-secret" },
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /proxy\.toml:5: workers: expected an integer from 0/);
    const before = traffic.ok;
    await eventually("traffic after the reloads", () => Promise.resolve(traffic.ok > before + 200));
  } finally {
    const { ok, errors } = await traffic.stop();
    assert.deepEqual(errors.slice(0, 5), [], `${errors.length} of ${ok + errors.length} failed`);
  }
});

Deno.test("the access log writes one line per sampled request; off, it writes none", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/proxy.toml`;
  await Deno.writeTextFile(
    config,
    "port = 0\nworkers = 1\naccess_log = true\ntest_methods = true\n",
  );
  const on = spawnProgram(["serve", "--config", config]);
  await using _on = on;
  const client = await RpcClient.connect(await waitListening(on));
  try {
    await client.call("echo", ["x"]);
    await assert.rejects(client.call("fail", ["no"]));
    const line = await on.waitForLine(
      /proxy·access: echo key=- via=worker 1 \(pid \d+\) code=OK latency_ms=[\d.]+$/,
    );
    assert.ok(line);
    await on.waitForLine(
      /proxy·access: fail key=- via=worker 1 \(pid \d+\) code=ERROR latency_ms=/,
    );
    // A client cannot forge log lines, nor write megabytes into the log.
    const forged = "m0\n2026-11-25 19:00:00.000 +00:00 [FTL] proxy·proxy: FORGED";
    await assert.rejects(client.call(forged));
    await on.waitForLine(/proxy·access: m0\\x0a2026-11-25 19:00:00\.000 .* FORGED key=-/);
    assert.ok(
      !on.stderrLines.some((l) => l.startsWith("2026-11-25 19:00:00.000")),
      "no forged line",
    );
    await assert.rejects(client.call("y".repeat(100_000)));
    const long = await on.waitForLine(/proxy·access: y+\.\.\. key=-/);
    assert.ok(long[0].length < 300, `one short line, got ${long[0].length} characters`);
  } finally {
    client.close();
  }
  // Sampled to nothing: 50 requests, no line.
  const off = spawnProgram(["serve", "--config", config, "--access-log-sample", "0"]);
  await using _off = off;
  const c2 = await RpcClient.connect(await waitListening(off));
  try {
    for (let i = 0; i < 50; i++) await c2.call("echo", [i]);
  } finally {
    c2.close();
  }
  off.kill("SIGTERM");
  await off.status;
  assert.equal(off.stderrLines.filter((l) => l.includes("proxy·access")).length, 0);
});

Deno.test("serve --config FILE --check: exit 0 for a good file, exit 2 naming file, line and key for a bad one", async () => {
  await using dir = await tempDir();
  const good = `${dir.path}/good.toml`;
  await Deno.writeTextFile(good, 'workers = 2\nqueue_timeout = "2s"\n');
  const ok = await runProgram(["serve", "--config", good, "--check"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), `${good}: OK`);
  const bad = `${dir.path}/bad.toml`;
  await Deno.writeTextFile(bad, "workers = 2\n\nqueue_size = 0.5\n");
  const refused = await runProgram(["serve", "--config", bad, "--check"]);
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /bad\.toml:3: queue_size: expected an integer from 0 to \d+, got 0\.5/,
  );
  // Rules that tie options together see flags and file merged, flags winning.
  const none = `${dir.path}/none.toml`;
  await Deno.writeTextFile(none, "workers = 0\n");
  const nowhere = await runProgram(["serve", "--config", none, "--check"]);
  assert.equal(nowhere.code, 2);
  assert.match(nowhere.stderr, /none\.toml:1: workers: 0 workers and no --upstream/);
  const fixed = await runProgram(["serve", "--config", none, "--workers", "1", "--check"]);
  assert.equal(fixed.code, 0, fixed.stderr);
  // --check reads the files the options name, as serve would.
  const files = `${dir.path}/files.toml`;
  await Deno.writeTextFile(files, `auth_token_file = "${dir.path}/no-tokens"\n`);
  const noTokens = await runProgram(["serve", "--config", files, "--check"]);
  assert.equal(noTokens.code, 2);
  assert.match(noTokens.stderr, /--auth-token-file: cannot read .*no-tokens/);
  await Deno.writeTextFile(files, `handler = ["${dir.path}/missing_handler.ts"]\n`);
  const noHandler = await runProgram(["serve", "--config", files, "--check"]);
  assert.equal(noHandler.code, 2);
  assert.match(noHandler.stderr, /--handler: cannot read .*missing_handler\.ts/);
});

Deno.test("a reload whose log file cannot be opened is refused whole, and the proxy goes on logging where it did", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/proxy.toml`;
  await Deno.writeTextFile(config, 'port = 0\nworkers = 1\nadmin = "127.0.0.1:0"\n');
  const p = await serveWithAdmin(config);
  await using _p = p.proc;
  await Deno.writeTextFile(
    config,
    `port = 0\nworkers = 2\nadmin = "127.0.0.1:0"\nlog_file = "${dir.path}/no/such/dir/proxy.log"\n`,
  );
  const bad = await get(`${p.admin}/reload`, { method: "POST" });
  assert.equal(bad.status, 400, bad.body);
  assert.match(JSON.parse(bad.body).error, /no\/such\/dir\/proxy\.log/);
  await p.proc.waitForLine(/Reload refused: .*no\/such\/dir/);
  assert.equal((await status(p.admin)).workers.length, 1, "nothing of it applied");
  // Logging is where it was: the next reload is on stderr, and applies.
  await Deno.writeTextFile(config, 'port = 0\nworkers = 2\nadmin = "127.0.0.1:0"\n');
  const from = p.proc.stderrLines.length;
  const ok = await get(`${p.admin}/reload`, { method: "POST" });
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(JSON.parse(ok.body).applied, ["--workers"]);
  await p.proc.waitForLine(/Reload done/, { from });
});

Deno.test("the admin endpoint listens again after running out of file descriptors; the client port is not affected", async () => {
  // A small open-file limit, so that half-sent admin requests exhaust it.
  const deno = [
    Deno.execPath(),
    ...programArgs("serve", "--port", "0", "--workers", "1", "--admin", "127.0.0.1:0"),
  ]
    .map((w) => `'${w}'`).join(" ");
  const proc = spawnCommand("sh", ["-c", `ulimit -n 128 && exec ${deno}`]);
  await using _proc = proc;
  const admin = (await proc.waitForLine(/Admin endpoint on (http:\/\/\S+?)\/? /))[1]!;
  const address = await waitListening(proc);
  const { hostname, port } = new URL(admin);
  const held: Deno.Conn[] = [];
  try {
    // Each holds a descriptor with half a request; beyond the limit, accept fails.
    for (let i = 0; i < 200; i++) {
      try {
        const c = await Deno.connect({ hostname, port: Number(port) });
        await c.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\n"));
        held.push(c);
      } catch {
        break; // refused: the listener is gone
      }
    }
    await proc.waitForLine(/Admin endpoint stopped \(.*\); listening again in \d+ ms/);
  } finally {
    for (const c of held) c.close();
  }
  const back = await eventually("the admin endpoint back", async () => {
    try {
      const r = await fetch(`${admin}/healthz`);
      return r.status === 200 ? await r.text() : undefined;
    } catch {
      return undefined;
    }
  }, 20_000);
  assert.equal(back, "ok\n");
  const client = await RpcClient.connect(address);
  try {
    assert.equal(await client.call("echo", ["fine"]), "fine");
  } finally {
    client.close();
  }
});
