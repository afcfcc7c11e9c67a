/**
 * What a reload (SIGHUP, `POST /reload`) does with a changed configuration:
 * which options apply at once, which replace the workers, and which wait for
 * a restart (the listening socket, the front's limits).
 *
 * @module
 */

import type { ServeSettings } from "../options/serve_options.ts";

type Key = keyof ServeSettings;

/** Applied to the dispatcher at once: time limits and retries. */
export const DISPATCH_KEYS: readonly Key[] = [
  "queueTimeout",
  "requestTimeout",
  "methodTimeout",
  "killAfter",
  "retryIdempotent",
  "retryAll",
];

/** Applied to the supervisor at once: the pool's sizes and recycling. */
export const POOL_KEYS: readonly Key[] = [
  "workers",
  "minWorkers",
  "maxWorkers",
  "minSpare",
  "maxSpare",
  "idleTimeout",
  "maxRequests",
  "maxRequestsJitter",
  "maxMemory",
  "memoryCheckInterval",
  "crashLoopThreshold",
  "crashLoopWindow",
  "crashLoopCooldown",
  "workerStartTimeout",
  "shutdownGrace",
  "workerLogRate",
];

/** Taken by new workers: a reload replaces every worker with one that has them. */
export const WORKER_KEYS: readonly Key[] = [
  "handler",
  "workerCmd",
  "testMethods",
  "maxInFlightPerWorker",
  "workerWriteLimit",
  "readyCheck",
  "workerAllowNet",
  "workerAllowEnv",
  "workerAllowRun",
  "workerAllowRead",
  "workerAllowWrite",
  "workerAllowSys",
  "workerAllowFfi",
];

/** Applied at once by the front: logging, the access log, tokens. */
export const FRONT_KEYS: readonly Key[] = [
  "logLevel",
  "logFormat",
  "logFile",
  "logMaxSize",
  "logMaxFiles",
  "accessLog",
  "accessLogSample",
  "adminTokenFile",
];

/** What a reload does. */
export interface ReloadPlan {
  /** Options whose value changed. */
  changed: Key[];
  /** Of those, what applies to the dispatcher. */
  dispatch: Key[];
  /** What applies to the supervisor. */
  pool: Key[];
  /** What the new workers take. */
  worker: Key[];
  /** What the front applies. */
  front: Key[];
  /** True when the upstream list changed. */
  upstreams: boolean;
  /** What needs a restart to apply (as flags, e.g. `--port`). */
  restart: string[];
  /** The same as keys: they keep their running values. */
  kept: Key[];
  /** What applies now, as flags. */
  applied: string[];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function flag(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Compares the running options with the new ones.
 *
 * @param before The running options.
 * @param after The options read now.
 * @param hasUpstreamSet Whether upstreams can change without a restart.
 *
 * @example Usage
 * ```ts
 * import { planReload } from "./reload_plan.ts";
 * import { resolveServeSettings } from "../options/serve_options.ts";
 * const before = resolveServeSettings({ workers: 2 });
 * const after = resolveServeSettings({ workers: 3, port: 9000 });
 * const plan = planReload(before, after, false);
 * console.log(plan.pool, plan.restart); // ["workers"] ["--port"]
 * ```
 */
export function planReload(
  before: ServeSettings,
  after: ServeSettings,
  hasUpstreamSet: boolean,
): ReloadPlan {
  const plan: ReloadPlan = {
    changed: [],
    dispatch: [],
    pool: [],
    worker: [],
    front: [],
    upstreams: false,
    restart: [],
    kept: [],
    applied: [],
  };
  const hadWorkers = before.pool !== "static" || before.workers > 0;
  const hasWorkers = after.pool !== "static" || after.workers > 0;
  for (const key of Object.keys(after) as Key[]) {
    if (key === "config" || key === "check" || same(before[key], after[key])) continue;
    plan.changed.push(key);
    // Turning the admin token off is not a reload's to do: whoever can edit
    // the file could then open the endpoint; it takes a restart.
    if (key === "adminTokenFile" && after.adminTokenFile === undefined) {
      plan.kept.push(key);
    } else if (DISPATCH_KEYS.includes(key)) plan.dispatch.push(key);
    else if (FRONT_KEYS.includes(key)) plan.front.push(key);
    else if (key === "upstream" && hasUpstreamSet) plan.upstreams = true;
    else if (hadWorkers && hasWorkers && before.pool === after.pool) {
      if (POOL_KEYS.includes(key)) plan.pool.push(key);
      else if (WORKER_KEYS.includes(key)) plan.worker.push(key);
      else plan.kept.push(key);
    } else plan.kept.push(key);
  }
  plan.restart = plan.kept.map(flag);
  plan.applied = plan.changed.filter((k) => !plan.kept.includes(k)).map(flag);
  return plan;
}
