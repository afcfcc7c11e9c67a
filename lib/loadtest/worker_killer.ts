/**
 * The `--chaos` of `proxy test`: every so often, SIGKILL one ready worker of
 * a running proxy, found through its `proxy.stats`.
 *
 * @module
 */

import { RpcClient, type RpcClientOptions } from "../client/rpc_client.ts";
import { type Address, formatAddress } from "../net/address.ts";
import { ProxyError } from "../protocol/mod.ts";

/** The code thrown when the target cannot be used for chaos. */
export const CHAOS_UNSUPPORTED = "CHAOS_UNSUPPORTED";

/** One worker as `proxy.stats` lists it (the fields used here). */
export interface WorkerInfo {
  /** The pool's number for it. */
  id: number;
  /** Its pid, once spawned. */
  pid: number | null;
  /** `starting`, `ready`, `draining` or `exited`. */
  state: string;
}

/** What the killer needs of `proxy.stats`. */
export interface ProxyStatsView {
  /** The proxy's pid. */
  pid: number;
  /** Its workers. */
  workers: WorkerInfo[];
}

/** Options of {@linkcode WorkerKiller.connect}. */
export interface WorkerKillerOptions {
  /** The proxy. */
  address: Address;
  /** Milliseconds between kills. */
  intervalMs: number;
  /** Source of randomness in [0, 1). @default {Math.random} */
  random?: () => number;
  /** Sends the signal. @default {Deno.kill(pid, "SIGKILL")} */
  kill?: (pid: number) => void;
  /**
   * The parent pid of a process, or null when unknown; a pid is only killed
   * when its parent is the proxy (or unknown). @default {parentPid}
   */
  parentOf?: (pid: number) => Promise<number | null>;
  /** Milliseconds to wait for `proxy.stats`. @default {2000} */
  statsTimeout?: number;
  /** How to reach the proxy when it asks for TLS or a token. */
  client?: Pick<RpcClientOptions, "tls" | "caCerts" | "serverName" | "token">;
}

/**
 * Kills a random ready worker of a proxy at a fixed interval.
 *
 * @example Usage
 * ```ts ignore
 * import { WorkerKiller } from "./worker_killer.ts";
 * const killer = await WorkerKiller.connect({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 8080 },
 *   intervalMs: 500,
 * });
 * killer.start();
 * // ... load ...
 * await killer.close();
 * console.log(killer.crashes);
 * ```
 */
export class WorkerKiller {
  readonly #client: RpcClient;
  readonly #options: WorkerKillerOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy: Promise<void> | null = null;
  #closed = false;
  #crashes = 0;
  #skipped = 0;
  #lastError: string | null = null;

  private constructor(client: RpcClient, options: WorkerKillerOptions) {
    this.#client = client;
    this.#options = options;
  }

  /**
   * Connects to the proxy and checks that it answers `proxy.stats` with
   * workers this process may kill.
   *
   * @throws {ProxyError} `CHAOS_UNSUPPORTED` when the target is not a proxy
   * on this machine; `CONNECT_FAILED` when it cannot be reached.
   * @throws {RangeError} On an interval below 1 ms.
   */
  static async connect(options: WorkerKillerOptions): Promise<WorkerKiller> {
    if (!(options.intervalMs >= 1)) {
      throw new RangeError(
        `Cannot start chaos: interval must be at least 1 ms, got ${options.intervalMs}`,
      );
    }
    const where = formatAddress(options.address);
    if (options.address.transport === "tcp" && !isLocalHost(options.address.hostname)) {
      throw new ProxyError(
        CHAOS_UNSUPPORTED,
        `Cannot use --chaos on ${where}: its workers must run on this machine (loopback or unix: target)`,
      );
    }
    const client = await RpcClient.connect(options.address, {
      ...options.client,
      connectTimeout: 5000,
    });
    const killer = new WorkerKiller(client, options);
    try {
      const stats = await killer.#stats();
      if (stats.workers.length === 0) throw new Error("it lists no worker");
    } catch (err) {
      client.close();
      throw new ProxyError(
        CHAOS_UNSUPPORTED,
        `Cannot use --chaos on ${where}: it does not answer proxy.stats with its workers (${
          err instanceof Error ? err.message : String(err)
        })`,
        { cause: err },
      );
    }
    return killer;
  }

  /** Workers killed so far. */
  get crashes(): number {
    return this.#crashes;
  }

  /** Rounds in which no worker could be killed (none ready, or stats failed). */
  get skipped(): number {
    return this.#skipped;
  }

  /** The last problem met, if any. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Starts killing, one worker every interval. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (this.#busy || this.#closed) return;
      this.#busy = this.killOne().then(() => {}).finally(() => this.#busy = null);
    }, this.#options.intervalMs);
  }

  /** Stops killing (a kill under way completes). Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#busy;
  }

  /** Stops and closes the connection to the proxy. Idempotent. */
  async close(): Promise<void> {
    await this.stop();
    this.#closed = true;
    this.#client.close();
  }

  /**
   * Kills one random ready worker now.
   *
   * @returns The pid killed, or null when none could be.
   */
  async killOne(): Promise<number | null> {
    let stats: ProxyStatsView;
    try {
      stats = await this.#stats();
    } catch (err) {
      this.#skip(`proxy.stats failed: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
    if (this.#closed) return null;
    const parentOf = this.#options.parentOf ?? parentPid;
    const ready = stats.workers.filter((w) =>
      w.state === "ready" && typeof w.pid === "number" && w.pid > 0
    );
    if (ready.length === 0) {
      this.#skip("no worker was ready");
      return null;
    }
    const random = this.#options.random ?? Math.random;
    const victim = ready[Math.min(ready.length - 1, Math.floor(random() * ready.length))]!;
    const pid = victim.pid!;
    const parent = await parentOf(pid);
    if (this.#closed) return null;
    if (parent !== null && parent !== stats.pid) {
      this.#skip(`pid ${pid} is not a child of the proxy (pid ${stats.pid}); not killed`);
      return null;
    }
    try {
      (this.#options.kill ?? ((p: number) => Deno.kill(p, "SIGKILL")))(pid);
    } catch (err) {
      this.#skip(`cannot kill pid ${pid}: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
    this.#crashes++;
    return pid;
  }

  #skip(why: string): void {
    this.#skipped++;
    this.#lastError = why;
  }

  async #stats(): Promise<ProxyStatsView> {
    const value = await this.#client.call("proxy.stats", [], {
      timeout: this.#options.statsTimeout ?? 2000,
    });
    const v = value as Partial<ProxyStatsView> | null;
    if (v === null || typeof v !== "object" || !Array.isArray(v.workers)) {
      throw new TypeError("the answer has no workers list");
    }
    return { pid: typeof v.pid === "number" ? v.pid : -1, workers: v.workers };
  }
}

function isLocalHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * The parent pid of `pid`: from /proc when this process may read it (Deno
 * asks for --allow-all there), else from `ps`. 0 when the process is gone,
 * null when neither can tell.
 */
export async function parentPid(pid: number): Promise<number | null> {
  if (Deno.build.os === "linux") {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(fields[1]);
      return Number.isInteger(ppid) ? ppid : 0;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return 0;
      // NotCapable without --allow-all: ask ps
    }
  }
  try {
    const out = await new Deno.Command("ps", {
      args: ["-o", "ppid=", "-p", String(pid)],
      stderr: "null",
    })
      .output();
    if (!out.success) return 0; // no such process
    const ppid = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}
