/**
 * Peak EWMA (Finagle's and Linkerd's): two hosts drawn at random, the one
 * whose expected cost, latency x (requests in flight + 1) / weight, is lower
 * wins. A host that slows down sheds load before its queue shows it.
 *
 * @module
 */

import type { Call } from "../call.ts";
import type { Host } from "../host.ts";
import type { Balancer } from "./balancer.ts";

/** Latency assumed for a host not yet measured (ms): cheap, so it gets tried. */
const UNMEASURED_MS = 0.001;

/**
 * @example Usage
 * ```ts
 * import { EwmaBalancer } from "./ewma.ts";
 * const host = (id: number, latencyMs: number) => ({ id, label: String(id), key: undefined, weight: 1, warmth: 1, load: 0, served: 0, latencyMs, paceUs: 0, available: true, send() {}, notify: () => true });
 * console.log(new EwmaBalancer().pick([host(1, 50), host(2, 1)])?.id); // 2
 * ```
 */
export class EwmaBalancer implements Balancer {
  readonly #random: () => number;

  /** @param random Source of randomness in [0, 1). @default {Math.random} */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Picks the cheaper of two random available hosts. */
  pick(hosts: readonly Host[], _call?: Call): Host | null {
    let n = 0;
    for (let i = 0; i < hosts.length; i++) if (hosts[i]!.available) n++;
    if (n === 0) return null;
    const a = nthAvailable(hosts, Math.floor(this.#random() * n));
    if (n === 1) return a;
    let j = Math.floor(this.#random() * (n - 1));
    if (j >= rank(hosts, a)) j++;
    const b = nthAvailable(hosts, j);
    return cost(b) < cost(a) ? b : a;
  }
}

function cost(h: Host): number {
  return ((h.latencyMs || UNMEASURED_MS) * (h.load + 1)) / (h.weight * h.warmth || 1e-6);
}

function nthAvailable(hosts: readonly Host[], n: number): Host {
  for (const h of hosts) if (h.available && n-- === 0) return h;
  throw new RangeError("Cannot pick: fewer available hosts than counted");
}

function rank(hosts: readonly Host[], host: Host): number {
  let r = 0;
  for (const h of hosts) {
    if (h === host) return r;
    if (h.available) r++;
  }
  return r;
}
