/**
 * Smooth weighted round robin (nginx's): every pick adds each host's weight
 * to its running score, the highest score wins and gives back the total, so
 * a host of weight 3 and one of weight 1 go a, a, b, a rather than a, a, a, b.
 * Hosts that cannot take a request now are passed over.
 *
 * @module
 */

import type { Call } from "../call.ts";
import type { Host } from "../host.ts";
import type { Balancer } from "./balancer.ts";

/**
 * @example Usage
 * ```ts
 * import { RoundRobinBalancer } from "./round_robin.ts";
 * const host = (id: number, weight: number) => ({ id, label: String(id), key: undefined, weight, warmth: 1, load: 0, served: 0, latencyMs: 0, paceUs: 0, available: true, send() {}, notify: () => true });
 * const hosts = [host(1, 3), host(2, 1)];
 * const rr = new RoundRobinBalancer();
 * console.log([1, 2, 3, 4].map(() => rr.pick(hosts)?.id)); // [1, 1, 2, 1]
 * ```
 */
export class RoundRobinBalancer implements Balancer {
  readonly #current = new WeakMap<Host, number>();

  /** Picks the next host in weighted turn. */
  pick(hosts: readonly Host[], _call?: Call): Host | null {
    let total = 0;
    let best: Host | null = null;
    let bestScore = -Infinity;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      const w = h.weight * h.warmth;
      if (!h.available || w <= 0) continue;
      const score = (this.#current.get(h) ?? 0) + w;
      this.#current.set(h, score);
      total += w;
      if (score > bestScore) {
        bestScore = score;
        best = h;
      }
    }
    if (best !== null) this.#current.set(best, bestScore - total);
    return best;
  }
}
