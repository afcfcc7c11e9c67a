/**
 * A `proxy serve` started for a test, with a client and its stats at hand.
 *
 * @module
 */

import { RpcClient } from "../../lib/client/rpc_client.ts";
import type { ProxyStats } from "../../lib/proxy/proxy_server.ts";
import { type ProgramProcess, type SpawnOptions, spawnProgram, waitListening } from "./process.ts";

/** A running proxy; dispose it (`await using`). */
export interface TestProxy extends AsyncDisposable {
  proc: ProgramProcess;
  address: string;
  client: RpcClient;
  stats(): Promise<ProxyStats>;
}

/**
 * Starts `proxy serve --port 0 ARGS` and waits until it listens.
 *
 * @param args Flags (`--test-methods` is not implied).
 * @param options Environment and the like for the process.
 */
export async function startProxy(args: string[], options: SpawnOptions = {}): Promise<TestProxy> {
  const proc = spawnProgram(["serve", "--port", "0", ...args], options);
  let address: string;
  try {
    address = await waitListening(proc);
  } catch (err) {
    await proc[Symbol.asyncDispose]();
    throw err;
  }
  const client = await RpcClient.connect(address);
  return {
    proc,
    address,
    client,
    stats: async () => await client.call("proxy.stats") as ProxyStats,
    async [Symbol.asyncDispose]() {
      client.close();
      await proc[Symbol.asyncDispose]();
    },
  };
}
