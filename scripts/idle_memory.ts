/**
 * `deno task idle-memory`: the proxy's resident memory with many idle client
 * connections, and after they close.
 *
 * Starts `proxy serve --workers 1`, reads its RSS, opens N connections that
 * each make one `ping` and then sit idle, reads the RSS again, closes them,
 * waits for the proxy to see them gone, and reads it a last time. Prints a
 * Markdown table (and `--json`). A measurement, not a test: the numbers
 * depend on the machine.
 *
 * @module
 */

import { Command } from "commander";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { connect, parseAddress } from "../lib/net/address.ts";
import { startProxy } from "../lib/loadtest/server_process.ts";
import { currentRuntime } from "../lib/process/self_command.ts";
import { readRssMb } from "../lib/process/memory.ts";
import { encodeRequest } from "../lib/protocol/mod.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).href;

interface Result {
  connections: number;
  baseline_mb: number;
  idle_mb: number;
  per_connection_kb: number;
  after_close_mb: number;
}

async function measure(count: number): Promise<Result> {
  const runtime = currentRuntime(MAIN);
  // Started as `deno task proxy` starts it (with the GC exposed), or as a
  // compiled binary is.
  const proxy = await startProxy({
    workers: 1,
    args: ["--max-connections", String(count + 10), "--first-byte-timeout", "1m"],
    runtime: { ...runtime, denoFlags: [...runtime.denoFlags, "--v8-flags=--expose-gc"] },
  });
  const conns: Deno.Conn[] = [];
  try {
    const address = parseAddress(proxy.address);
    const stats = await RpcClient.connect(address);
    const rss = async () => (await readRssMb([proxy.pid])).get(proxy.pid) ?? NaN;
    const settle = (ms = 1500) => new Promise((r) => setTimeout(r, ms));
    await settle();
    const baseline = await rss();
    const ping = encodeRequest(1, "ping", []);
    const buf = new Uint8Array(64);
    for (let i = 0; i < count; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(200, count - i) }, async () => {
          const c = await connect(address);
          await c.write(ping);
          await c.read(buf); // its answer: the connection has done real work
          return c;
        }),
      );
      conns.push(...batch);
    }
    await settle();
    const idle = await rss();
    for (const c of conns.splice(0)) c.close();
    while (((await stats.call("proxy.stats")) as ProxyStats).connections.open > 1) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // The proxy runs a major GC two seconds after many connections closed.
    await settle(5_000);
    const after = await rss();
    stats.close();
    return {
      connections: count,
      baseline_mb: baseline,
      idle_mb: idle,
      per_connection_kb: Math.round(((idle - baseline) * 1024) / count * 10) / 10,
      after_close_mb: after,
    };
  } finally {
    for (const c of conns) c.close();
    await proxy.stop();
  }
}

if (import.meta.main) {
  const cmd = new Command("idle-memory")
    .option("--connections <n>", "idle connections to open", "10000")
    .option("--json", "print JSON", false)
    .parse(Deno.args, { from: "user" });
  const opts = cmd.opts<{ connections: string; json: boolean }>();
  const result = await measure(Number(opts.connections));
  if (opts.json) console.log(JSON.stringify(result));
  else {
    console.log("| connections | RSS before | RSS idle | per connection | RSS after close |");
    console.log("| ---: | ---: | ---: | ---: | ---: |");
    console.log(
      `| ${result.connections} | ${result.baseline_mb} MiB | ${result.idle_mb} MiB | ${result.per_connection_kb} KiB | ${result.after_close_mb} MiB |`,
    );
  }
}
