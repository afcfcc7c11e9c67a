/**
 * `deno task fleet`: the two-tier fleet on loopback, in one command.
 *
 * - two backend hosts, each `proxy serve --pool dedicated` (one worker
 *   process per user, started on first use);
 * - two front proxies, each `proxy serve --workers 0 --upstream ... --balance
 *   hash --route-key user_id`, with the same upstream list and no
 *   coordination between them.
 *
 * Whichever front proxy a user's request enters by, it reaches the same
 * backend host, and there the same worker process. Runs until Ctrl-C and
 * stops everything; `--check` instead sends 20 users' requests through both
 * fronts, checks each user met one worker process, and exits (0 when so).
 *
 * @module
 */

import { Command } from "commander";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { ServerProcess } from "../lib/loadtest/server_process.ts";
import { currentRuntime } from "../lib/process/self_command.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).href;

/** A running fleet; stop it with {@linkcode Fleet.stop}. */
export interface Fleet {
  fronts: string[];
  backends: string[];
  stop(): Promise<void>;
}

/** Starts `hosts` dedicated backend hosts and `fronts` hashing front proxies on loopback. */
export async function startFleet(
  options: { hosts?: number; fronts?: number } = {},
): Promise<Fleet> {
  const runtime = currentRuntime(MAIN);
  const started: ServerProcess[] = [];
  const stop = async () => {
    for (const p of started.reverse()) await p.stop();
  };
  try {
    const backends: string[] = [];
    for (let i = 0; i < (options.hosts ?? 2); i++) {
      const p = await ServerProcess.start(
        [
          ...["serve", "--host", "127.0.0.1", "--port", "0", "--pool", "dedicated"],
          ...[
            "--route-key",
            "user_id",
            "--max-workers",
            "64",
            "--idle-timeout",
            "5m",
            "--parent-watch",
          ],
        ],
        { runtime },
      );
      started.push(p);
      backends.push(p.address);
    }
    const fronts: string[] = [];
    for (let i = 0; i < (options.fronts ?? 2); i++) {
      const p = await ServerProcess.start(
        [
          ...["serve", "--host", "127.0.0.1", "--port", "0", "--workers", "0"],
          ...backends.flatMap((b) => ["--upstream", `tcp:${b}`]),
          ...["--balance", "hash", "--route-key", "user_id", "--parent-watch"],
        ],
        { runtime },
      );
      started.push(p);
      fronts.push(p.address);
    }
    return { fronts, backends, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Sends `users` users' requests through every front; true when each met one worker process. */
export async function checkFleet(fleet: Fleet, users = 20): Promise<boolean> {
  const clients = await Promise.all(fleet.fronts.map((f) => RpcClient.connect(f)));
  try {
    let same = 0;
    for (let u = 0; u < users; u++) {
      const params = [{ user_id: `user-${u}` }];
      const pids = await Promise.all(
        clients.map(async (c) => ((await c.call("info", params)) as { pid: number }).pid),
      );
      if (new Set(pids).size === 1) same++;
    }
    console.log(
      `${same} of ${users} users met the same worker process through ${clients.length} front proxies`,
    );
    return same === users;
  } finally {
    for (const c of clients) c.close();
  }
}

if (import.meta.main) {
  const opts = new Command("fleet")
    .option("--check", "verify the fleet and exit", false)
    .parse(Deno.args, { from: "user" })
    .opts<{ check: boolean }>();
  const fleet = await startFleet();
  console.log(`Backend hosts (serve --pool dedicated): ${fleet.backends.join(", ")}`);
  console.log(`Front proxies (--balance hash --route-key user_id): ${fleet.fronts.join(", ")}`);
  if (opts.check) {
    const ok = await checkFleet(fleet);
    await fleet.stop();
    Deno.exit(ok ? 0 : 1);
  }
  const [host, port] = [fleet.fronts[0]!.split(":")[0], fleet.fronts[0]!.split(":")[1]];
  console.log(
    `Try: deno task proxy client ${host} ${port} info '{"user_id":"alice"}'   (Ctrl-C stops the fleet)`,
  );
  const stop = new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve());
    Deno.addSignalListener("SIGTERM", () => resolve());
  });
  await stop;
  await fleet.stop();
  Deno.exit(0);
}
