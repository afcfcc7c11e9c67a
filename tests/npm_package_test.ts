/**
 * The npm package (`deno task npm`): its manifest, the `proxy` command run by
 * Node on the `deno` dependency's binary (signals in, exit codes out, workers
 * re-invoked from the bundle), and its client on plain Node.
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { DENO_VERSION } from "../scripts/npm/build.ts";
import { buildTestPackage } from "./helpers/npm.ts";
import { closedPort, spawnCommand, waitListening } from "./helpers/process.ts";
import { startProxy } from "./helpers/proxy.ts";
import { eventually } from "./helpers/wait.ts";
import { RpcClient } from "../lib/client/rpc_client.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";

async function runNode(args: string[], cwd: string): Promise<Deno.CommandOutput> {
  return await new Deno.Command("node", {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test("deno task npm writes a package with the bin, deno.json's version, a pinned deno and the task's flags", async () => {
  await using pkg = await buildTestPackage();
  const manifest = JSON.parse(await Deno.readTextFile(`${pkg.built.dir}/package.json`));
  assert.equal(manifest.name, denoJson.name);
  assert.equal(manifest.version, denoJson.version);
  assert.deepEqual(manifest.bin, { proxy: "bin/proxy.cjs" });
  assert.deepEqual(manifest.dependencies, { deno: DENO_VERSION });
  assert.equal(DENO_VERSION, "2.9.6");
  assert.ok(manifest.engines.node);
  assert.equal(manifest.exports["./client"], "./lib/client.js");
  for (
    const file of ["bin/proxy.cjs", "lib/client.js", "lib/protocol.js", "proxy.js", "README.md"]
  ) {
    await Deno.stat(`${pkg.built.dir}/${file}`);
  }
  const launch = JSON.parse(await Deno.readTextFile(`${pkg.built.dir}/launch.json`));
  const task = denoJson.tasks.proxy.split(/\s+/);
  for (const flag of task.slice(2, -1)) assert.ok(launch.denoFlags.includes(flag), flag);
  assert.ok(launch.denoFlags.includes("--v8-flags=--expose-gc"));
  assert.ok(launch.denoFlags.includes("--no-config"));
});

Deno.test("the npm bin runs the program on Node from below a broken deno.json, exit codes intact", async (t) => {
  await using pkg = await buildTestPackage();
  await t.step("--version prints deno.json's version", async () => {
    const out = await runNode([pkg.bin, "--version"], pkg.project);
    assert.equal(out.code, 0, text(out.stderr));
    assert.equal(text(out.stdout).trim(), denoJson.version);
  });
  await t.step("a refused connection exits 3, a usage error 2", async () => {
    const refused = await runNode(
      [pkg.bin, "client", "127.0.0.1", String(closedPort()), "ping"],
      pkg.project,
    );
    assert.equal(refused.code, 3, text(refused.stderr));
    const usage = await runNode([pkg.bin, "serve", "--bogus"], pkg.project);
    assert.equal(usage.code, 2, text(usage.stderr));
  });
});

Deno.test("proxy serve through the npm bin re-invokes the bundle for its workers; SIGHUP and SIGTERM reach it", async () => {
  await using pkg = await buildTestPackage();
  await using serve = spawnCommand("node", [pkg.bin, "serve", "--port", "0", "--workers", "2"], {
    cwd: pkg.project,
  });
  const address = await waitListening(serve, { timeoutMs: 30_000 });
  const client = await RpcClient.connect(address);
  const stats = async () => await client.call("proxy.stats") as ProxyStats;
  // Disposing `serve` signals node only: should it fail to pass the signal
  // on, the program and its workers are ended here, not left behind.
  const pids = [(await stats()).pid];
  try {
    assert.equal(await client.call("echo", [2n ** 64n - 1n]), 2n ** 64n - 1n);
    const before = (await stats()).workers.map((w) => w.pid!);
    pids.push(...before);
    assert.equal(before.length, 2);

    serve.kill("SIGHUP"); // to node, which passes it on: a rolling restart
    const after = await eventually("workers replaced after SIGHUP", async () => {
      const now = (await stats()).workers;
      const replaced = now.length === 2 &&
        now.every((w) => w.state === "ready" && !before.includes(w.pid!));
      return replaced && now.map((w) => w.pid!);
    });
    pids.push(...after);
    assert.equal(await client.call("echo", ["still here"]), "still here");

    serve.kill("SIGTERM");
    const status = await serve.waitExit();
    assert.equal(status.code, 0, serve.stderr);
    assert.match(serve.stderr, /Proxy stopped/);
    for (const pid of pids) assert.ok(!isRunning(pid), `process ${pid} stopped`);
  } finally {
    client.close();
    for (const pid of pids) if (isRunning(pid)) Deno.kill(pid, "SIGKILL");
  }
});

Deno.test("the npm package's client on plain Node echoes an integer beyond 2^53 exactly, and big frames", async () => {
  await using pkg = await buildTestPackage();
  await using proxy = await startProxy(["--workers", "1"]);
  const script = `
    import { RpcClient, RemoteError, Float } from "proxy/client";
    const client = await RpcClient.connect(process.argv[1]);
    const big = 2n ** 63n + 1n;
    const echoed = await client.call("echo", [big]);
    const whole = await client.call("echo", [new Float(2)]);
    const error = await client.call("no.such.method").catch((e) => e);
    // Big frames both ways (split and joined by node:net) and many calls in flight.
    const blob = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const back = await client.call("echo", [blob]);
    const many = await Promise.all(Array.from({ length: 500 }, (_, i) => client.call("echo", [i])));
    client.close();
    await client.done;
    console.log(JSON.stringify({
      type: typeof echoed,
      exact: echoed === big,
      text: String(echoed),
      float: whole instanceof Float && whole.value === 2,
      remote: error instanceof RemoteError ? error.code : String(error),
      blob: back instanceof Uint8Array && back.length === blob.length && back.every((b, i) => b === blob[i]),
      many: many.every((v, i) => v === i),
      deno: typeof Deno,
    }));
  `;
  const out = await runNode(["--input-type=module", "-e", script, proxy.address], pkg.project);
  assert.equal(out.code, 0, text(out.stderr));
  assert.deepEqual(JSON.parse(text(out.stdout)), {
    type: "bigint",
    exact: true,
    text: "9223372036854775809",
    float: true,
    remote: "METHOD_NOT_FOUND",
    blob: true,
    many: true,
    deno: "undefined",
  });
});
