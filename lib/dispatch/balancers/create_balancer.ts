/**
 * The balancer of a `--balance` strategy.
 *
 * @module
 */

import type { Balancer, BalanceStrategy } from "./balancer.ts";
import { BatchKeeping } from "./batch_keeping.ts";
import { HashBalancer } from "./consistent_hash.ts";
import { EwmaBalancer } from "./ewma.ts";
import { LeastRequestBalancer } from "./least_request.ts";
import { RoundRobinBalancer } from "./round_robin.ts";

/** Options of {@linkcode createBalancer}. */
export interface CreateBalancerOptions {
  /** `hash`: the load bound factor (0: none). @default {0} */
  hashBalanceFactor?: number;
  /** Randomness in [0, 1). @default {Math.random} */
  random?: () => number;
  /**
   * `least-request` and `ewma`: a read batch stays on one host while the
   * host's pace is under this many µs per answer (see `BatchKeeping`); 0
   * spreads every request.
   * @default {0}
   */
  keepBatchBelowUs?: number;
  /**
   * With batch keeping: how many requests (per unit of weight) the kept host
   * may carry beyond the least loaded other one.
   * @default {16}
   */
  keepBatchLead?: number;
}

/**
 * @example Usage
 * ```ts
 * import { createBalancer } from "./create_balancer.ts";
 * console.log(createBalancer("round-robin").constructor.name); // RoundRobinBalancer
 * ```
 */
export function createBalancer(
  strategy: BalanceStrategy,
  options: CreateBalancerOptions = {},
): Balancer {
  switch (strategy) {
    case "round-robin":
      return new RoundRobinBalancer();
    case "hash":
      return new HashBalancer({ balanceFactor: options.hashBalanceFactor ?? 0 });
    case "ewma":
      return keepBatches(new EwmaBalancer(options.random), options);
    default:
      return keepBatches(new LeastRequestBalancer(options.random), options);
  }
}

function keepBatches(inner: Balancer, options: CreateBalancerOptions): Balancer {
  const us = options.keepBatchBelowUs ?? 0;
  return us > 0
    ? new BatchKeeping(inner, { belowUs: us, lead: options.keepBatchLead ?? 16 })
    : inner;
}
