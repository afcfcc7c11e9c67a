/**
 * Consistent hashing on the request's routing key with Maglev's lookup
 * table (Eisenbud et al., NSDI 2016; Envoy's `maglev_lb`): every proxy given
 * the same hosts builds the same table, so a key reaches the same host
 * whichever front proxy it enters by, with no coordination; when a host
 * leaves, only about 1/N of the keys move. Weights give hosts table entries
 * in proportion.
 *
 * With a balance factor c > 0 it is "consistent hashing with bounded loads"
 * (Mirrokni, Thorup, Zadimoghaddam, 2018): no host takes more than
 * c x the average load; a key whose host is over that goes to the next
 * host along the table that is not.
 *
 * @module
 */

import type { Call } from "../call.ts";
import type { Host } from "../host.ts";
import type { Balancer } from "./balancer.ts";
import { LeastRequestBalancer } from "./least_request.ts";

/** Options of {@linkcode HashBalancer}. */
export interface HashBalancerOptions {
  /**
   * Bounded load factor: a host takes at most `factor` x the average load;
   * 0 turns the bound off (a key always goes to its host, waiting if busy).
   * @default {0}
   */
  balanceFactor?: number;
  /** Size of the lookup table, a prime well above the number of hosts. @default {65537} */
  tableSize?: number;
}

/**
 * A 53-bit hash of a string (cyrb53: two multiplicative 32-bit lanes mixed
 * together), the same in every process and version, and cheap enough to run
 * per request.
 */
export function hashKey(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * Builds a Maglev lookup table: `table[i]` is the index of the host that
 * owns slot i. Hosts are taken in order of their label, so the table depends
 * only on the set of hosts, not on the order they were listed in.
 *
 * @param hosts Labels and weights.
 * @param size A prime.
 * @returns Host indexes (into `hosts`) by slot.
 */
export function maglevTable(
  hosts: readonly { label: string; weight: number }[],
  size: number,
): Int32Array<ArrayBuffer> {
  const table = new Int32Array(size).fill(-1);
  if (hosts.length === 0) return table;
  const order = hosts.map((h, i) => ({ i, label: h.label, weight: h.weight }))
    .sort((a, b) => a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
  const offset = order.map((h) => hashKey(`${h.label}#offset`) % size);
  const skip = order.map((h) => (hashKey(`${h.label}#skip`) % (size - 1)) + 1);
  const next = new Array<number>(order.length).fill(0);
  const maxWeight = Math.max(...order.map((h) => h.weight));
  const credit = new Array<number>(order.length).fill(0);
  let filled = 0;
  while (filled < size) {
    for (let k = 0; k < order.length && filled < size; k++) {
      // A host of half the top weight takes a slot every other round.
      credit[k]! += order[k]!.weight / maxWeight;
      while (credit[k]! >= 1 && filled < size) {
        credit[k]! -= 1;
        let slot: number;
        do {
          slot = (offset[k]! + next[k]! * skip[k]!) % size;
          next[k]!++;
        } while (table[slot] !== -1);
        table[slot] = order[k]!.i;
        filled++;
      }
    }
  }
  return table;
}

/**
 * @example Usage
 * ```ts
 * import { HashBalancer } from "./consistent_hash.ts";
 * const host = (id: number) => ({ id, label: `10.0.0.${id}:9000`, key: undefined, weight: 1, warmth: 1, load: 0, served: 0, latencyMs: 0, paceUs: 0, available: true, send() {}, notify: () => true });
 * const hosts = [host(1), host(2), host(3)];
 * const balancer = new HashBalancer();
 * const call = { key: "user-42" } as never;
 * console.log(balancer.pick(hosts, call) === balancer.pick([...hosts].reverse(), call)); // true
 * ```
 */
export class HashBalancer implements Balancer {
  readonly #factor: number;
  readonly #size: number;
  readonly #fallback = new LeastRequestBalancer();
  #hosts: readonly Host[] = [];
  #signature = "";
  #table: Int32Array<ArrayBuffer> = new Int32Array(0);

  /** @param options The load bound and the table size. */
  constructor(options: HashBalancerOptions = {}) {
    this.#factor = options.balanceFactor ?? 0;
    this.#size = options.tableSize ?? 65537;
    if (!(this.#factor === 0 || this.#factor >= 1)) {
      throw new RangeError(`Cannot create hash balancer: balanceFactor must be 0 or at least 1`);
    }
  }

  /**
   * The key's host; with a load bound, the first host along the table that
   * is under it. A call without a key goes to the least loaded host. The
   * host returned may be busy (not `available`): the call then waits for it.
   */
  pick(hosts: readonly Host[], call: Call): Host | null {
    if (call.key === undefined) return this.#fallback.pick(hosts, call);
    if (hosts.length === 0) return null;
    this.#refresh(hosts);
    const size = this.#size;
    const start = hashKey(call.key) % size;
    const own = this.#hosts[this.#table[start]!]!;
    if (this.#factor === 0) return own;
    let total = 0;
    for (const h of this.#hosts) total += h.load;
    const cap = Math.ceil((this.#factor * (total + 1)) / this.#hosts.length);
    const tried = new Set<Host>();
    for (let i = 0; i < size && tried.size < this.#hosts.length; i++) {
      const h = this.#hosts[this.#table[(start + i) % size]!]!;
      if (tried.has(h)) continue;
      tried.add(h);
      if (h.available && h.load < cap) return h;
    }
    return own;
  }

  // The table is rebuilt only when the set of hosts (or a weight) changes.
  #refresh(hosts: readonly Host[]): void {
    if (hosts === this.#hosts) return;
    const signature = hosts.map((h) => `${h.label}*${h.weight}`).sort().join(",");
    this.#hosts = hosts;
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#table = maglevTable(hosts, this.#size);
  }
}
