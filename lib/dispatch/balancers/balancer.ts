/**
 * A balancer: a strategy that picks one host for one request. Small and
 * interchangeable; it sees hosts only through their load, weight, latency
 * and availability.
 *
 * @module
 */

import type { Call } from "../call.ts";
import type { Host } from "../host.ts";

/** Picks a host for a call. */
export interface Balancer {
  /**
   * Picks one of `hosts` that is `available`, or null when none can take
   * the call now (it then waits in the queue).
   */
  pick(hosts: readonly Host[], call: Call): Host | null;
}

/**
 * The strategies of `--balance`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { BALANCE_STRATEGIES } from "./balancer.ts";
 * assert.ok(BALANCE_STRATEGIES.includes("least-request"));
 * ```
 */
export const BALANCE_STRATEGIES = ["least-request", "round-robin", "hash", "ewma"] as const;

/** One of {@linkcode BALANCE_STRATEGIES}. */
export type BalanceStrategy = typeof BALANCE_STRATEGIES[number];
