/**
 * Least request: the host with the fewest requests in flight (per unit of
 * weight) wins; among equals, two are drawn at random and the one that has
 * served fewer wins, so the load spreads evenly without every proxy (or
 * every idle moment) hammering the first host of the list. One pass, no
 * allocation (Envoy's `least_request_lb.cc` does the same).
 *
 * @module
 */

import type { Call } from "../call.ts";
import type { Host } from "../host.ts";
import type { Balancer } from "./balancer.ts";

/**
 * @example Usage
 * ```ts
 * import { LeastRequestBalancer } from "./least_request.ts";
 * const hosts = [
 *   { id: 1, label: "a", key: undefined, weight: 1, warmth: 1, load: 3, served: 10, latencyMs: 0, paceUs: 0, available: true, send() {}, notify: () => true },
 *   { id: 2, label: "b", key: undefined, weight: 1, warmth: 1, load: 1, served: 10, latencyMs: 0, paceUs: 0, available: true, send() {}, notify: () => true },
 * ];
 * console.log(new LeastRequestBalancer().pick(hosts, {} as never)?.label); // b
 * ```
 */
export class LeastRequestBalancer implements Balancer {
  readonly #random: () => number;

  /** @param random Source of randomness in [0, 1). @default {Math.random} */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Picks the least loaded available host. */
  pick(hosts: readonly Host[], _call?: Call): Host | null {
    let best = Infinity;
    let a: Host | null = null;
    let b: Host | null = null;
    let ties = 0;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      if (!h.available) continue;
      const w = h.weight * h.warmth;
      const score = w === 1 ? h.load : h.load / w;
      if (score < best) {
        best = score;
        a = h;
        b = null;
        ties = 1;
      } else if (score === best) {
        // Two uniform random samples of the tied hosts (reservoir sampling).
        ties++;
        if (ties === 2) {
          if (this.#random() < 0.5) b = h;
          else {
            b = a;
            a = h;
          }
        } else {
          const j = Math.floor(this.#random() * ties);
          if (j === 0) a = h;
          else if (j === 1) b = h;
        }
      }
    }
    if (b === null) return a;
    return b.served < a!.served ? b : a;
  }
}
