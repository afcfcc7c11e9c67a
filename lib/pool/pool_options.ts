/**
 * The options and the reported state of a worker pool (`WorkerPool`).
 *
 * @module
 */

import type { CommandLine } from "./worker_command.ts";
import type { SpawnFn } from "./worker_process.ts";

/** How the pool sizes itself. */
export type PoolMode = "static" | "dynamic" | "ondemand" | "dedicated";

/** The pool modes, for flag validation. */
export const POOL_MODES: readonly PoolMode[] = ["static", "dynamic", "ondemand", "dedicated"];

/** Options of {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /** How the pool sizes itself. @default {"static"} */
  mode?: PoolMode;
  /** `static`: number of workers. @default {navigator.hardwareConcurrency} */
  workers?: number;
  /** `dynamic`: workers kept even when idle. @default {1} */
  minWorkers?: number;
  /** `dynamic`, `ondemand`, `dedicated`: most workers at once. @default {2 × CPUs (dedicated: 64)} */
  maxWorkers?: number;
  /** `dynamic`: idle workers to keep ready ahead of demand. @default {1} */
  minSpare?: number;
  /** `dynamic`: idle workers above which idle ones stop. @default {3} */
  maxSpare?: number;
  /** `dynamic`, `ondemand`, `dedicated`: ms a worker may sit idle before it stops. @default {10000} */
  idleTimeout?: number;
  /** Directory for the worker sockets (private to the proxy). */
  socketDir: string;
  /** The command line of a worker, given its socket path. */
  commandLine: (socket: string) => CommandLine;
  /** Requests one worker may have in flight. @default {128} */
  maxInFlightPerWorker?: number;
  /** Requests that may wait for a worker. @default {1024} */
  queueSize?: number;
  /** Milliseconds a request may wait for a worker. @default {10000} */
  queueTimeout?: number;
  /** Milliseconds a worker may take to get ready. @default {10000} */
  startTimeout?: number;
  /** Largest message accepted from a worker. @default {8388608} */
  maxMessageSize?: number;
  /** Methods sent once more to another worker when theirs dies, or `"all"`. @default {[]} */
  retry?: readonly string[] | "all";
  /** Milliseconds before a request is answered `TIMEOUT`; 0 = none. @default {30000} */
  requestTimeout?: number;
  /** Per-method overrides of `requestTimeout`. @default {{}} */
  methodTimeouts?: Readonly<Record<string, number>>;
  /** Milliseconds after which a worker still busy with one request is killed; 0 = never. @default {60000} */
  killAfter?: number;
  /** Requests after which a worker is retired and replaced; 0 = never. @default {0} */
  maxRequests?: number;
  /** Random extra requests (0 to this) added per worker to `maxRequests`, so workers do not retire together. @default {0} */
  maxRequestsJitter?: number;
  /** Resident memory in MiB above which a worker is retired; 0 = no limit. @default {0} */
  maxMemoryMb?: number;
  /** Milliseconds between memory readings. @default {2000} */
  memoryCheckInterval?: number;
  /** Failed starts in a row after which a worker slot stops respawning. @default {5} */
  crashLoopThreshold?: number;
  /** Milliseconds a crash-looping slot rests before trying again. @default {30000} */
  crashLoopCooldown?: number;
  /** Starts processes; tests inject fakes. @default {spawnWorkerProcess} */
  spawn?: SpawnFn;
  /** Connects to a worker socket; tests inject fakes. */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Randomness for the balancer and jitter. @default {Math.random} */
  random?: () => number;
}

/** One worker's line in {@linkcode PoolStats}. */
export interface WorkerStats {
  id: number;
  mode: PoolMode;
  key: string | null;
  pid: number | null;
  state: string;
  in_flight: number;
  served: number;
  restarts: number;
  rss_mb: number | null;
  started_at: string;
}

/** A worker that has exited, as {@linkcode PoolStats} remembers it. */
export interface ExitRecord {
  id: number;
  key: string | null;
  pid: number | null;
  code: number;
  signal: string | null;
  reason: string;
  at: string;
}

/** What `proxy.stats` reports of the pool. */
export interface PoolStats {
  mode: PoolMode;
  socket_dir: string;
  workers: WorkerStats[];
  past_exits: ExitRecord[];
  queue: { length: number; capacity: number };
  totals: {
    requests: number;
    answered: number;
    spawns: number;
    crashes: number;
    worker_exits: number;
    timeouts: number;
    kills: number;
    retries: number;
    recycles: number;
    queue_full: number;
    queue_timeouts: number;
    notifications_dropped: number;
  };
}
