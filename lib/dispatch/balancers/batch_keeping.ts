/**
 * Keeps the requests of one read batch (what one read of a client's
 * connection brought) on one host while that host is quick, and otherwise
 * lets another balancer pick each request.
 *
 * A client that pipelines 16 echoes gains nothing from having them spread
 * over hosts that are all busy anyway, and pays for it: every host a batch
 * touches costs a write and a wake-up on both sides, and the answers come
 * back in more, smaller reads and writes. At 16 x 16 keeping cuts the front
 * end's CPU per request by a sixth (bench/2026-11-25-targets.md). Costly
 * requests, on a host whose pace is at or above the bound, are spread one
 * by one as before: that is what keeps every worker busy with CPU-bound
 * work. A host not yet measured is not kept on. A batch that finds another
 * host idle is spread request by request from there on, as without keeping:
 * keeping is for when every host is busy anyway, and spare capacity is
 * better used than saved. Nor is a host kept on that carries `lead` more
 * requests (per unit of weight) than the least loaded other host, which
 * bounds what a batch of requests that turn out slow can pile on one host.
 *
 * @module
 */

import type { Call, Requester } from "../call.ts";
import type { Host } from "../host.ts";
import type { Balancer } from "./balancer.ts";

/**
 * @example Usage
 * ```ts
 * import { BatchKeeping } from "./batch_keeping.ts";
 * import { LeastRequestBalancer } from "./least_request.ts";
 * // Two quick hosts (5 us per answer), each with a request of another client.
 * const host = (id: number) => ({ id, label: String(id), key: undefined, weight: 1, warmth: 1, load: 1, served: 0, latencyMs: 0, paceUs: 5, available: true, send() {}, notify: () => true });
 * const hosts = [host(1), host(2)];
 * const balancer = new BatchKeeping(new LeastRequestBalancer(), { belowUs: 50, lead: 16 });
 * const requester = { closed: false, batch: 7, deliver() {}, fail() {} };
 * const first = balancer.pick(hosts, { requester, avoid: null } as never)!;
 * (first as { load: number }).load++; // least-request alone would now pick the other
 * console.log(balancer.pick(hosts, { requester, avoid: null } as never) === first); // true
 * ```
 */
export class BatchKeeping implements Balancer {
  readonly #inner: Balancer;
  readonly #belowUs: number;
  readonly #lead: number;
  // The last pick made for a batch: whose, which read, among which hosts.
  #requester: Requester | null = null;
  #batch = -1;
  #hosts: readonly Host[] | null = null;
  #host: Host | null = null;
  #spread = false; // this batch found a host idle: no more keeping

  /**
   * @param inner Picks the first request of each batch, and every request
   *   not kept.
   * @param options `belowUs`: the bound on the kept host's pace, µs per
   *   answer; `lead`: how many requests (per unit of weight) it may carry
   *   beyond the least loaded other host.
   */
  constructor(inner: Balancer, options: { belowUs: number; lead: number }) {
    this.#inner = inner;
    this.#belowUs = options.belowUs;
    this.#lead = options.lead;
  }

  /** The batch's host when it is quick and can take more; else the inner balancer's pick. */
  pick(hosts: readonly Host[], call: Call): Host | null {
    const requester = call.requester;
    // Read now, not when the call arrived: a queued call drained later counts
    // as its requester's current read, which at worst keeps it with that one.
    const batch = requester.batch;
    // A retry goes elsewhere (the dispatcher narrowed `hosts` for it).
    if (batch === undefined || call.avoid !== null) return this.#inner.pick(hosts, call);
    const same = requester === this.#requester && batch === this.#batch && hosts === this.#hosts;
    if (same && this.#spread) return this.#inner.pick(hosts, call);
    const kept = this.#host;
    if (
      same && kept !== null && kept.available && kept.paceUs > 0 && kept.paceUs < this.#belowUs
    ) {
      const crowded = this.#crowded(hosts, kept);
      if (crowded === 0) return kept;
      if (crowded === IDLE) {
        // Spare capacity: the rest of this batch is spread as without keeping.
        this.#spread = true;
        return this.#inner.pick(hosts, call);
      }
    }
    const host = this.#inner.pick(hosts, call);
    this.#requester = requester;
    this.#batch = batch;
    this.#hosts = hosts;
    this.#host = host;
    this.#spread = false;
    return host;
  }

  // IDLE when another host has nothing to do, AHEAD when the kept one is
  // `lead` ahead of the least loaded other, else 0.
  #crowded(hosts: readonly Host[], kept: Host): number {
    let least = Infinity;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      if (h === kept || !h.available) continue;
      if (h.load === 0) return IDLE;
      const s = score(h);
      if (s < least) least = s;
    }
    return score(kept) >= least + this.#lead ? AHEAD : 0;
  }
}

const IDLE = 1;
const AHEAD = 2;

function score(h: Host): number {
  const w = h.weight * h.warmth;
  return w === 1 ? h.load : h.load / (w || 1e-6);
}
