/**
 * The balancer of a `--balance` strategy.
 *
 * @module
 */

import type { Balancer, BalanceStrategy } from "./balancer.ts";
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
      return new EwmaBalancer(options.random);
    default:
      return new LeastRequestBalancer(options.random);
  }
}
