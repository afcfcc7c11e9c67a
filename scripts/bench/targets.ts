/**
 * The front ends compared, started on loopback: a worker directly, our
 * proxy as shipped, HAProxy and nginx's stream module in front of workers
 * started by hand. Their config texts are pure functions.
 *
 * @module
 */

import { RpcClient } from "../../lib/client/rpc_client.ts";
import type { Runtime } from "../../lib/process/self_command.ts";
import { ServerProcess, startProxy } from "../../lib/loadtest/server_process.ts";
import type { Cleanups } from "./cleanups.ts";
import { log } from "./log.ts";

/** One front end under test. */
export interface Target {
  /** `direct`, `ours`, `ours-upstream`, `haproxy`, `nginx` or `deno-relay`. */
  name: string;
  /** What it is, for the report. */
  label: string;
  /** Where the load goes, `HOST:PORT`. */
  address: string;
  /** The front end's processes (none for direct). */
  frontPids: number[];
  /** The workers behind it. */
  workerPids: number[];
}

/** The worker program everywhere: `proxy backend` with the benchmark's methods. */
export const HANDLER = new URL("./handler.ts", import.meta.url).pathname;

/** What starting a target needs. */
export interface StartContext {
  /** How to re-invoke this program. */
  runtime: Runtime;
  /** A private directory for config files. */
  dir: string;
  /** Where to register how to stop what is started. */
  cleanups: Cleanups;
}

/**
 * HAProxy's config: TCP mode, `balance leastconn` over `backends`.
 *
 * @param port Its listening port on 127.0.0.1.
 * @param backends The workers' `HOST:PORT`.
 * @param threads `nbthread`.
 */
export function haproxyConfig(port: number, backends: readonly string[], threads: number): string {
  return [
    "global",
    "  maxconn 4096",
    `  nbthread ${threads}`,
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
    "frontend front",
    `  bind 127.0.0.1:${port}`,
    "  default_backend workers",
    "backend workers",
    "  balance leastconn",
    ...backends.map((b, i) => `  server w${i + 1} ${b}`),
    "",
  ].join("\n");
}

/**
 * nginx's config: one process in the foreground, the stream module with
 * `least_conn` over `backends`.
 *
 * @param port Its listening port on 127.0.0.1.
 * @param backends The workers' `HOST:PORT`.
 * @param dir Where its pid and error log go.
 * @param loadModule The `load_module` line, or `""` when the module is built in.
 */
export function nginxConfig(
  port: number,
  backends: readonly string[],
  dir: string,
  loadModule: string,
): string {
  return [
    loadModule,
    "daemon off;",
    "master_process off;",
    "worker_processes 1;",
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/nginx-error.log warn;`,
    "events { worker_connections 8192; }",
    "stream {",
    "  upstream workers {",
    "    least_conn;",
    ...backends.map((b) => `    server ${b};`),
    "  }",
    `  server { listen 127.0.0.1:${port}; proxy_pass workers; }`,
    "}",
    "",
  ].join("\n");
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Waits until a ping goes through the front end on `port`. A bare connect
 * that is closed at once is not used as a probe: the front end would open
 * a connection to a worker and reset it, and a reset connection once
 * stopped `proxy backend` from accepting (bench/2026-11-25-results.md).
 */
async function waitReady(port: number, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if (exited) throw new Error(`Cannot start ${what}: it exited`);
    try {
      const client = await RpcClient.connect(`127.0.0.1:${port}`, { connectTimeout: 1000 });
      try {
        await client.call("ping", [], { timeout: 2000 });
        return;
      } finally {
        await client.end();
      }
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`Cannot start ${what}: no answer to ping through port ${port} within 10 s`);
}

/** Starts an outside program, stopped (SIGTERM, then SIGKILL after 5 s) by the cleanups. */
function spawnForeign(
  cleanups: Cleanups,
  cmd: string,
  args: string[],
  what: string,
): Deno.ChildProcess {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  const errText = new Response(child.stderr).text().catch(() => "");
  cleanups.add(async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    const text = (await errText).trim();
    if (text) log(`${what} said: ${text.split("\n").slice(-3).join(" | ")}`);
  });
  return child;
}

/** Starts `count` workers on TCP (`proxy backend --listen 127.0.0.1:0 --handler ...`). */
export async function startBackends(ctx: StartContext, count: number): Promise<ServerProcess[]> {
  const backends: ServerProcess[] = [];
  for (let i = 0; i < count; i++) {
    const server = await ServerProcess.start(
      ["backend", "--listen", "127.0.0.1:0", "--handler", HANDLER],
      { runtime: ctx.runtime },
    );
    ctx.cleanups.add(() => server.stop());
    backends.push(server);
  }
  return backends;
}

/** The first of `backends`, loaded directly. */
export function directTarget(backends: readonly ServerProcess[]): Target {
  const first = backends[0]!;
  return {
    name: "direct",
    label: "one worker (`proxy backend --listen`), no proxy",
    address: first.address,
    frontPids: [],
    workerPids: [first.pid],
  };
}

/**
 * Our proxy as shipped, started as `proxy test` starts its own (with
 * --parent-watch, so a killed benchmark leaves no proxy behind).
 */
export async function startOurs(ctx: StartContext, workers: number): Promise<Target> {
  const proxy = await startProxy({ workers, args: ["--handler", HANDLER], runtime: ctx.runtime });
  ctx.cleanups.add(() => proxy.stop());
  return {
    name: "ours",
    label: `\`proxy serve --workers ${workers}\` as shipped (its own workers, on unix sockets)`,
    address: proxy.address,
    frontPids: [proxy.pid],
    workerPids: await workerPids(proxy.address),
  };
}

/**
 * Our proxy with no workers of its own, `--upstream` over TCP to the same
 * workers HAProxy and nginx use: the same topology, side by side.
 */
export async function startOursUpstream(
  ctx: StartContext,
  backends: readonly ServerProcess[],
): Promise<Target> {
  const proxy = await startProxy({
    workers: 0,
    args: backends.flatMap((b) => ["--upstream", `tcp:${b.address}`]),
    runtime: ctx.runtime,
  });
  ctx.cleanups.add(() => proxy.stop());
  return {
    name: "ours-upstream",
    label: "`proxy serve --workers 0 --upstream ...` over TCP to the same workers as HAProxy",
    address: proxy.address,
    frontPids: [proxy.pid],
    workerPids: backends.map((b) => b.pid),
  };
}

/** HAProxy in front of `backends`. */
export async function startHaproxy(
  ctx: StartContext,
  backends: readonly ServerProcess[],
  threads: number,
): Promise<Target> {
  const port = freePort();
  const file = `${ctx.dir}/haproxy.cfg`;
  await Deno.writeTextFile(file, haproxyConfig(port, backends.map((b) => b.address), threads));
  const child = spawnForeign(ctx.cleanups, "haproxy", ["-db", "-f", file], "haproxy");
  await waitReady(port, child, "haproxy");
  return {
    name: "haproxy",
    label: `HAProxy (tcp, leastconn, nbthread ${threads})`,
    address: `127.0.0.1:${port}`,
    frontPids: [child.pid],
    workerPids: backends.map((b) => b.pid),
  };
}

/**
 * `deno_relay.ts` in front of `backends`: what any Deno front end costs for
 * the same traffic (bytes copied per connection, nothing parsed).
 */
export async function startDenoRelay(
  ctx: StartContext,
  backends: readonly ServerProcess[],
): Promise<Target> {
  const port = freePort();
  const child = spawnForeign(ctx.cleanups, Deno.execPath(), [
    "run",
    "--allow-net",
    new URL("./deno_relay.ts", import.meta.url).pathname,
    String(port),
    ...backends.map((b) => b.address),
  ], "deno relay");
  await waitReady(port, child, "the Deno relay");
  return {
    name: "deno-relay",
    label: "a byte relay in Deno, per connection (least connections), parsing nothing: " +
      "Deno's floor for the same traffic",
    address: `127.0.0.1:${port}`,
    frontPids: [child.pid],
    workerPids: backends.map((b) => b.pid),
  };
}

/** nginx's stream module in front of `backends`. */
export async function startNginx(
  ctx: StartContext,
  backends: readonly ServerProcess[],
  loadModule: string,
): Promise<Target> {
  const port = freePort();
  const file = `${ctx.dir}/nginx.conf`;
  const config = nginxConfig(port, backends.map((b) => b.address), ctx.dir, loadModule);
  await Deno.writeTextFile(file, config);
  const child = spawnForeign(
    ctx.cleanups,
    "nginx",
    ["-e", `${ctx.dir}/nginx-error.log`, "-p", ctx.dir, "-c", file],
    "nginx",
  );
  await waitReady(port, child, "nginx");
  return {
    name: "nginx",
    label: "nginx stream (least_conn, 1 worker process)",
    address: `127.0.0.1:${port}`,
    frontPids: [child.pid],
    workerPids: backends.map((b) => b.pid),
  };
}

/** The pids of a proxy's workers, from its `proxy.stats`. */
export async function workerPids(address: string): Promise<number[]> {
  const client = await RpcClient.connect(address);
  try {
    const stats = await client.call("proxy.stats", [], { timeout: 5000 }) as {
      workers: { pid: number | null }[];
    };
    return stats.workers.flatMap((w) => w.pid === null ? [] : [w.pid]);
  } finally {
    client.close();
  }
}
