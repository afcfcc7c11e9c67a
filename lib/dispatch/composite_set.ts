/**
 * Local workers and remote upstreams as one balanced set: `proxy serve
 * --workers N --upstream ...`. Each request goes to whichever host, worker
 * or server, its balancer picks.
 *
 * @module
 */

import type { WireError } from "../protocol/mod.ts";
import type { Call } from "./call.ts";
import type { EndpointSet, Placement, SetEvents, TrackedHost } from "./endpoint_set.ts";
import type { Host } from "./host.ts";
import type { SetStats } from "./stats.ts";

/** Two sets as one. */
export class CompositeSet implements EndpointSet {
  readonly #sets: readonly EndpointSet[];
  readonly #owner = new WeakMap<Host, EndpointSet>();
  #parts: (readonly Host[])[] = [];
  #placement: Placement = { hosts: [] };

  /** @param sets The sets, e.g. the supervisor and the upstream set. */
  constructor(sets: readonly EndpointSet[]) {
    this.#sets = sets;
  }

  /** Starts every set. */
  async start(events: SetEvents): Promise<void> {
    await Promise.all(this.#sets.map((s) => s.start(events)));
  }

  /** The hosts of every set (a new array only when one of them changed). */
  place(call: Call): Placement {
    let changed = false;
    for (let i = 0; i < this.#sets.length; i++) {
      const p = this.#sets[i]!.place(call);
      if (p.error || p.pin !== undefined) return p;
      if (p.hosts !== this.#parts[i]) {
        this.#parts[i] = p.hosts;
        changed = true;
      }
    }
    if (changed) {
      this.#placement = { hosts: this.#parts.flat() };
      for (const [i, part] of this.#parts.entries()) {
        for (const h of part) this.#owner.set(h, this.#sets[i]!);
      }
    }
    return this.#placement;
  }

  /** Tells the host's own set. */
  sent(host: Host, call: Call): void {
    this.#owner.get(host)?.sent(host, call);
  }

  /** Every set that can grow may. */
  demand(waiting: number): void {
    for (const s of this.#sets) s.demand(waiting);
  }

  /** True when any set is. */
  live(): boolean {
    return this.#sets.some((s) => s.live());
  }

  /** The first set's error. */
  unavailable(): WireError {
    return this.#sets[0]!.unavailable();
  }

  /** Every set's hosts. */
  *tracked(): Iterable<TrackedHost> {
    for (const s of this.#sets) yield* s.tracked();
  }

  /** Every set's chores. */
  housekeep(now: number): void {
    for (const s of this.#sets) s.housekeep(now);
  }

  /** Reloads every set. */
  async reload(): Promise<{ replaced: number; failed: number }> {
    const results = await Promise.all(this.#sets.map((s) => s.reload()));
    return {
      replaced: results.reduce((n, r) => n + r.replaced, 0),
      failed: results.reduce((n, r) => n + r.failed, 0),
    };
  }

  /** Refreshes every set. */
  async refresh(): Promise<void> {
    await Promise.all(this.#sets.map((s) => s.refresh()));
  }

  /** Both sets' stats, merged. */
  stats(): SetStats {
    const all = this.#sets.map((s) => s.stats());
    const totals: Record<string, number> = {};
    for (const st of all) {
      for (const [k, v] of Object.entries(st.totals)) totals[k] = (totals[k] ?? 0) + v;
    }
    return {
      socket_dir: all.find((s) => s.socket_dir !== null)?.socket_dir ?? null,
      workers: all.flatMap((s) => s.workers),
      past_exits: all.flatMap((s) => s.past_exits),
      upstreams: all.flatMap((s) => s.upstreams),
      totals: totals as SetStats["totals"],
    };
  }

  /** Closes every set. */
  async close(graceMs: number): Promise<void> {
    await Promise.all(this.#sets.map((s) => s.close(graceMs)));
  }
}
