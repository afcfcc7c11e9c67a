/**
 * Every file under `examples/` does what its comments say: the Python worker
 * behind `proxy serve --worker-cmd`, the handler module behind
 * `proxy serve --handler`, the Node client with the npm package against a
 * running proxy, and the systemd unit (a valid unit whose `ExecStart` is a
 * `proxy serve` command that starts).
 */

import assert from "node:assert/strict";
import { LegacyClient } from "../lib/client/legacy_client.ts";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { SERVE_OPTIONS } from "../lib/options/serve_options.ts";
import { Ext, Float, Timestamp } from "../lib/protocol/values.ts";
import { splitCommand } from "../lib/process/self_command.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";
import { buildTestPackage } from "./helpers/npm.ts";
import { REPO_ROOT, spawnCommand, waitListening } from "./helpers/process.ts";
import { startProxy } from "./helpers/proxy.ts";
import { pythonWith } from "./helpers/python.ts";
import { errorOf } from "./helpers/wait.ts";

const EXAMPLES = `${REPO_ROOT}/examples`;

/** `client.call` that fails the test after 10 s rather than hanging it. */
function caller(client: RpcClient) {
  return (method: string, params: unknown[] = []) =>
    client.call(method, params, { timeout: 10_000 });
}

function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test("examples/python_worker.py behind proxy serve --worker-cmd answers exactly and stops with the proxy", async () => {
  const python = await pythonWith();
  await using proxy = await startProxy([
    "--workers",
    "2",
    "--worker-cmd",
    `${python} ${EXAMPLES}/python_worker.py {socket}`,
  ]);
  const call = caller(proxy.client);
  const big = 2n ** 64n - 1n;
  assert.equal(await call("echo", [big]), big);
  assert.equal(await call("echo", [-(2n ** 63n)]), -(2n ** 63n));
  const value = { s: "é", b: new Uint8Array([0, 255]), f: 1.5, list: [null, true, -1, 70000] };
  assert.deepEqual(await call("echo", [value]), value);
  assert.deepEqual(await call("echo", [new Float(2)]), new Float(2));
  assert.deepEqual(
    await call("echo", [new Ext(5, new Uint8Array([1, 2, 3]))]),
    new Ext(5, new Uint8Array([1, 2, 3])),
  );
  assert.deepEqual(
    await call("echo", [new Timestamp(2n ** 40n, 999_999_999)]),
    new Timestamp(2n ** 40n, 999_999_999),
  );
  assert.equal(await call("add", [2, 40]), 42);
  assert.equal((await errorOf(call("add", ["x", 1]))).code, "INVALID_PARAMS");
  assert.equal((await errorOf(call("nope"))).code, "METHOD_NOT_FOUND");

  const pids = new Set(
    await Promise.all(Array.from({ length: 20 }, () => call("pid") as Promise<number>)),
  );
  const stats = await call("proxy.stats") as ProxyStats;
  assert.deepEqual(new Set(stats.workers.map((w) => w.pid)), pids, "pid() is the worker's pid");

  const legacy = await LegacyClient.connect(proxy.address);
  try {
    const ok = await legacy.call({ funcNo: 1000, body: '{"user_id":"allen"}' }, {
      timeout: 10_000,
    });
    assert.equal(ok.header.errNo, 0);
    assert.equal(new TextDecoder().decode(ok.body), "handle 1000 function successful for allen");
    const unknown = await legacy.call({ funcNo: 7, body: '{"user_id":"allen"}' }, {
      timeout: 10_000,
    });
    assert.equal(unknown.header.errNo, -1);
  } finally {
    legacy.close();
  }

  proxy.proc.kill("SIGTERM");
  assert.equal((await proxy.proc.waitExit()).code, 0, proxy.proc.stderr);
  for (const pid of pids) assert.ok(!isRunning(pid), `worker ${pid} exited`);
  // It exited on the shutdown notification (or its stdin closing), not by SIGKILL.
  assert.doesNotMatch(proxy.proc.stderr, /SIGKILL/);
});

Deno.test("examples/handler.ts behind proxy serve --handler serves its functions as methods", async () => {
  await using proxy = await startProxy([
    "--workers",
    "2",
    "--handler",
    `${EXAMPLES}/handler.ts`,
  ]);
  const call = caller(proxy.client);
  assert.equal(await call("add", [2, 40]), 42);
  assert.equal(await call("add", [2n ** 63n, 2n ** 63n - 1n]), 2n ** 64n - 1n);
  assert.deepEqual(await call("wordCount", ["a b  a"]), { a: 2, b: 1 });
  const error = await errorOf(call("wordCount", [1]));
  assert.equal(error.code, "HANDLER_ERROR");
  assert.match(error.message, /text must be a string/);
  const waited = await call("wait", [20]) as { waited_ms: number };
  assert.ok(waited.waited_ms >= 19, `waited ${waited.waited_ms} ms`);
  const stats = await proxy.stats();
  const { pid } = await call("whoami") as { pid: number };
  assert.ok(stats.workers.some((w) => w.pid === pid), "whoami() names a worker");
  assert.equal(await call("echo", ["built-ins stay"]), "built-ins stay");
});

Deno.test("examples/node_client.mjs on plain Node with the built npm package talks to a running proxy", async () => {
  await using pkg = await buildTestPackage();
  await using proxy = await startProxy(["--workers", "2"]);
  // Where `import "proxy/client"` finds the package, as after `npm i`.
  await Deno.copyFile(`${EXAMPLES}/node_client.mjs`, `${pkg.project}/node_client.mjs`);
  const out = await new Deno.Command("node", {
    args: ["node_client.mjs", proxy.address],
    cwd: pkg.project,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(
    stdout,
    [
      "echo: 18446744073709551615 (bigint, exact: true)",
      "ping x 100 pipelined: true",
      "error: METHOD_NOT_FOUND",
      "workers: 2",
      "",
    ].join("\n"),
  );
});

/** The unit file as sections of `[key, value]` lines; throws on a line that is neither. */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = line.match(/^\[(\w+)\]$/);
    if (section) {
      current = [];
      sections.set(section[1]!, current);
      continue;
    }
    const entry = line.match(/^([A-Za-z]+)=(.*)$/);
    assert.ok(entry && current, `line ${i + 1} is neither a [Section] nor Key=value: ${raw}`);
    current.push([entry[1]!, entry[2]!]);
  }
  return sections;
}

// The keys the unit may use, by section (systemd.unit(5), systemd.service(5),
// systemd.exec(5), systemd.kill(5)): a misspelt key is caught even where
// systemd-analyze is missing.
const UNIT_KEYS: Record<string, string[]> = {
  Unit: ["Description", "Documentation", "After", "Wants", "Requires"],
  Service: [
    "Type",
    "ExecStart",
    "ExecReload",
    "KillMode",
    "KillSignal",
    "TimeoutStopSec",
    "Restart",
    "RestartSec",
    "LimitNOFILE",
    "DynamicUser",
    "CacheDirectory",
    "Environment",
    "PrivateTmp",
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
  ],
  Install: ["WantedBy"],
};

Deno.test("examples/proxy.service is a valid unit whose ExecStart is a proxy serve command that starts", async (t) => {
  const text = await Deno.readTextFile(`${EXAMPLES}/proxy.service`);
  const unit = parseUnit(text);
  const service = new Map(unit.get("Service"));
  const execStart = splitCommand(service.get("ExecStart")!);

  await t.step("its sections and keys are systemd's, and it stops the proxy as it must", () => {
    assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
    for (const [section, entries] of unit) {
      for (const [key] of entries) {
        assert.ok(UNIT_KEYS[section]!.includes(key), `[${section}] ${key}`);
      }
    }
    assert.equal(
      service.get("KillMode"),
      "mixed",
      "SIGTERM to the proxy only: it stops its workers",
    );
    assert.equal(service.get("ExecReload"), "/bin/kill -HUP $MAINPID");
  });

  await t.step("every flag of ExecStart is a serve flag with a value it accepts", () => {
    assert.equal(execStart[1], "serve");
    for (let i = 2; i < execStart.length; i++) {
      const option = SERVE_OPTIONS.find((o) => `--${o.name}` === execStart[i]);
      assert.ok(option, `unknown flag ${execStart[i]}`);
      if (option.arg === null) continue;
      const value = execStart[++i];
      assert.ok(value !== undefined, `${execStart[i - 1]} needs a value`);
      assert.doesNotThrow(() => option.parse(value), `${option.name} ${value}`);
    }
  });

  await using pkg = await buildTestPackage();
  // The unit as installed, with the npm package's command where npm i -g puts it.
  const installed = text.replaceAll(execStart[0]!, pkg.bin);

  const analyze = await new Deno.Command("systemd-analyze", { args: ["--version"] }).output()
    .catch(() => null);
  await t.step({
    name: "systemd-analyze verify finds nothing to say",
    ignore: analyze === null || !analyze.success,
    fn: async () => {
      const path = `${pkg.project}/proxy.service`;
      await Deno.writeTextFile(path, installed);
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", "--man=no", path],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, said);
      assert.equal(said.trim(), "", "no warning (systemd-analyze exits 0 on unknown keys)");
    },
  });

  await t.step("its command line starts a proxy (on a free port) that answers", async () => {
    const args = execStart.slice(1).map((a, i, all) => all[i - 1] === "--port" ? "0" : a);
    await using serve = spawnCommand("node", [pkg.bin, ...args], { cwd: pkg.project });
    const address = await waitListening(serve, { timeoutMs: 30_000 });
    const client = await RpcClient.connect(address);
    try {
      const stats = await caller(client)("proxy.stats") as ProxyStats;
      assert.equal(stats.workers.length, Number(args[args.indexOf("--workers") + 1]));
      assert.equal(await caller(client)("echo", ["up"]), "up");
    } finally {
      client.close();
    }
    serve.kill("SIGTERM");
    assert.equal((await serve.waitExit()).code, 0, serve.stderr);
  });
});
