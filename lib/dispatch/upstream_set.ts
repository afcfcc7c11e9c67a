/**
 * The upstream set: the endpoint set of remote servers, configured or
 * discovered. It owns their membership (an upstream that leaves discovery is
 * drained: no new requests, those in flight finish; one that joins warms up),
 * their health (active checks, passive ejection capped to a share of the
 * set, routing to all when too few are healthy), and their connections.
 *
 * @module
 */

import { ErrorCode, type WireError } from "../protocol/mod.ts";
import type { Address } from "../net/address.ts";
import { getLogger } from "../log.ts";
import type { Call } from "./call.ts";
import { discoverDns, discoverSrv, type Discovery, type Resolver } from "./discovery.ts";
import type { EndpointSet, Placement, SetEvents, TrackedHost } from "./endpoint_set.ts";
import { ejectionAllowed, panicRouting } from "./health.ts";
import type { Host } from "./host.ts";
import type { SetStats } from "./stats.ts";
import { type HealthCheck, Upstream, upstreamLabel, type UpstreamOptions } from "./upstream.ts";
import type { UpstreamSpec } from "./upstream_spec.ts";

/** What every upstream of a set is given alike (see {@linkcode UpstreamOptions}). */
export type SharedUpstreamOptions = Pick<
  UpstreamOptions,
  | "connections"
  | "connectTimeout"
  | "maxInFlight"
  | "writeLimit"
  | "maxMessageSize"
  | "errorFormat"
  | "slowStartMs"
  | "timed"
  | "consecutiveFailures"
  | "rise"
  | "fall"
  | "connect"
  | "now"
  | "random"
>;

/** Options of {@linkcode UpstreamSet}: what its upstreams share, and the set's own. */
export interface UpstreamSetOptions extends SharedUpstreamOptions {
  /** Where the upstreams are. */
  specs: readonly UpstreamSpec[];
  /** Base ejection time (ms), times the number of ejections so far. */
  ejectionTimeMs: number;
  /** Most upstreams ejected at once, in % of the set. */
  maxEjectionPercent: number;
  /** Below this % of healthy upstreams, requests go to all of them. */
  panicThresholdPercent: number;
  /** Milliseconds between active checks of each upstream; 0 = none. */
  healthInterval: number;
  /** Milliseconds a check may take. */
  healthTimeout: number;
  /** What a check does. */
  healthCheck: HealthCheck;
  /** The longest time between DNS lookups (ms); shorter when TTLs say so. */
  dnsRefreshMs: number;
  /** Looks names up. */
  resolver: Resolver;
  /**
   * PEM certificates trusted for `tls:`, `dns+tls:` and `srv+tls:`
   * upstreams, besides the default roots.
   */
  caCerts?: string[];
  /** The first host id to use (ids are unique across sets). @default {1_000_000} */
  firstId?: number;
  /**
   * Start with no upstream at all (a config file may add some on reload).
   * @default {false}
   */
  allowEmpty?: boolean;
}

const log = getLogger(["upstream"]);

// A discovery source and the members it gave last.
interface Source {
  spec: Exclude<UpstreamSpec, { kind: "static" }>;
  members: Set<string>;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Remote servers as one set of hosts. */
export class UpstreamSet implements EndpointSet {
  readonly #o: UpstreamSetOptions;
  readonly #now: () => number;
  readonly #members = new Map<string, Upstream>(); // by address
  readonly #sources: Source[] = [];
  readonly #nextCheck = new Map<Upstream, number>();
  #routable: Upstream[] = [];
  #placement: Placement = { hosts: [] };
  #events: SetEvents | null = null;
  #nextId: number;
  #closed = false;
  #started = false;
  #lastError = "";
  readonly #totals = { ejections: 0, upstream_failures: 0, panics: 0 };
  #panic = false;

  /** @param options The upstreams, and how to connect to and judge them. */
  constructor(options: UpstreamSetOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#nextId = options.firstId ?? 1_000_000;
  }

  /** The upstreams, for tooling and tests. */
  get upstreams(): readonly Upstream[] {
    return [...this.#members.values()];
  }

  /**
   * Resolves the discovered ones, connects to all, and waits until each has
   * connected or failed once.
   *
   * @throws {Error} When no upstream is configured or discovered.
   */
  async start(events: SetEvents): Promise<void> {
    this.#events = events;
    for (const spec of this.#o.specs) {
      if (spec.kind === "static") {
        this.#add(spec.address, spec.weight, "static", this.#tls(spec.tls, undefined));
      } else this.#sources.push({ spec, members: new Set(), timer: undefined });
    }
    await Promise.all(this.#sources.map((s) => this.#refresh(s)));
    await Promise.all([...this.#members.values()].map((u) => u.start()));
    this.#started = true;
    this.#recompute();
    if (this.#members.size === 0 && !(this.#o.allowEmpty && this.#o.specs.length === 0)) {
      throw new Error(
        `Cannot start: no upstream found${this.#lastError ? ` (${this.#lastError})` : ""}`,
      );
    }
  }

  // What a TLS upstream trusts; the name checked is the one looked up, if any.
  #tls(tls: true | undefined, serverName: string | undefined) {
    if (!tls) return undefined;
    const caCerts = this.#o.caCerts;
    return { ...(caCerts ? { caCerts } : {}), ...(serverName ? { serverName } : {}) };
  }

  #add(
    address: Address,
    weight: number,
    source: string,
    tls: { caCerts?: string[]; serverName?: string } | undefined,
  ): Upstream {
    const key = upstreamLabel(address, tls !== undefined);
    const known = this.#members.get(key);
    if (known && !known.draining) {
      known.weight = weight;
      return known;
    }
    const o = this.#o;
    const upstream = new Upstream({
      id: this.#nextId++,
      address,
      ...(tls ? { tls } : {}),
      weight,
      source,
      connections: o.connections,
      connectTimeout: o.connectTimeout,
      maxInFlight: o.maxInFlight,
      writeLimit: o.writeLimit,
      maxMessageSize: o.maxMessageSize,
      errorFormat: o.errorFormat,
      slowStartMs: o.slowStartMs,
      timed: o.timed ?? false,
      consecutiveFailures: o.consecutiveFailures,
      rise: o.rise,
      fall: o.fall,
      ...(o.connect ? { connect: o.connect } : {}),
      now: this.#now,
      ...(o.random ? { random: o.random } : {}),
      onAnswer: (u, call) => this.#events?.onAnswer(u, call),
      onChange: (u) => {
        this.#recompute();
        if (u.available) this.#events?.onCapacity(u);
        if (u.closed) this.#forget(u);
      },
      onOrphans: (u, calls, error) => {
        this.#totals.upstream_failures += calls.length;
        this.#events?.onOrphans(u, calls, error);
      },
      onOutlier: (u) => this.#onOutlier(u),
    });
    if (known) this.#members.delete(key); // a draining one replaced by a new member
    this.#members.set(key, upstream);
    this.#nextCheck.set(upstream, this.#now() + o.healthInterval);
    return upstream;
  }

  #forget(u: Upstream): void {
    if (this.#members.get(u.label) === u) this.#members.delete(u.label);
    this.#nextCheck.delete(u);
  }

  // Looks a source up, adds what joined, drains what left, and schedules the next look.
  async #refresh(source: Source): Promise<void> {
    let found: Discovery | null = null;
    try {
      const spec = source.spec;
      found = spec.kind === "dns"
        ? await discoverDns(this.#o.resolver, spec.name, spec.port, spec.weight)
        : await discoverSrv(this.#o.resolver, spec.name);
    } catch (err) {
      this.#lastError = `${source.spec.text}: ${(err as Error).message}`;
      log.warn(`Cannot resolve upstream ${this.#lastError}; keeping what it gave before`);
    }
    if (this.#closed) return;
    if (found) {
      const now = new Set<string>();
      for (const m of found.members) {
        const tls = this.#tls(source.spec.tls, m.name);
        const u = this.#add(m.address, m.weight, source.spec.text, tls);
        now.add(u.label);
        if (!source.members.has(u.label) && this.#started) {
          log.info(`Upstream ${u.label} joined (${source.spec.text})`);
          void u.start();
        }
      }
      for (const label of source.members) {
        if (now.has(label)) continue;
        const u = this.#members.get(label);
        if (u) {
          log.info(`Upstream ${label} left (${source.spec.text}): draining it`);
          u.drain();
        }
      }
      source.members = now;
      this.#recompute();
    }
    const ttl = found?.ttlMs ?? 0;
    const next = Math.max(
      1000,
      Math.min(this.#o.dnsRefreshMs, ttl > 0 ? ttl : this.#o.dnsRefreshMs),
    );
    source.timer = setTimeout(() => void this.#refresh(source), next);
  }

  // The hosts requests may go to: routable ones, or (panic) every connected one.
  #recompute(): void {
    const members = [...this.#members.values()].filter((u) => !u.draining && !u.closed);
    const routable = members.filter((u) => u.routable);
    const panic = panicRouting(routable.length, members.length, this.#o.panicThresholdPercent);
    if (panic && !this.#panic) {
      this.#totals.panics++;
      log.warn(
        `Only ${routable.length} of ${members.length} upstreams healthy: sending to all of them (panic threshold ${this.#o.panicThresholdPercent}%)`,
      );
    }
    this.#panic = panic;
    const next = panic ? members.filter((u) => u.connected > 0) : routable;
    // A new array only when membership changed, so balancers can cache by identity.
    if (next.length !== this.#routable.length || next.some((u, i) => u !== this.#routable[i])) {
      this.#routable = next;
      this.#placement = { hosts: next };
    }
  }

  #onOutlier(u: Upstream): void {
    if (u.ejected || u.draining) return;
    const members = [...this.#members.values()].filter((m) => !m.draining);
    const ejected = members.filter((m) => m.ejected).length;
    if (!ejectionAllowed(ejected, members.length, this.#o.maxEjectionPercent)) return;
    this.#totals.ejections++;
    u.eject(this.#o.ejectionTimeMs, this.#o.ejectionTimeMs * 10);
    this.#recompute();
  }

  /** Any routable upstream (see the class doc for panic routing). */
  place(_call: Call): Placement {
    return this.#placement;
  }

  /** Nothing to count. */
  sent(_host: Host, _call: Call): void {}

  /** Upstreams are not started on demand. */
  demand(_waiting: number): void {}

  /**
   * True while some upstream is, or may soon be, connected (not one whose
   * TLS handshake failed: that takes a fix, not a wait).
   */
  live(): boolean {
    for (const u of this.#members.values()) {
      if (!u.closed && !u.draining && u.reachable) return true;
    }
    return false;
  }

  /** `NO_UPSTREAMS`, with the last connection or lookup error. */
  unavailable(): WireError {
    let last = this.#lastError;
    for (const u of this.#members.values()) {
      if (u.state === "connecting") {
        last ||= u.lastError ? `upstream ${u.label}: ${u.lastError}` : `${u.label} unreachable`;
      }
    }
    return {
      code: ErrorCode.NO_UPSTREAMS,
      message: `Cannot forward request: no upstream available${last ? ` (${last})` : ""}`,
    };
  }

  /** Every upstream, draining ones included. */
  *tracked(): Iterable<TrackedHost> {
    yield* this.#members.values();
  }

  /** Active checks when due, ejections that ran out, drained upstreams closed. */
  housekeep(now: number): void {
    if (this.#closed) return;
    let changed = false;
    for (const u of this.#members.values()) {
      if (u.draining && u.load === 0) {
        u.close();
        this.#forget(u);
        changed = true;
        continue;
      }
      if (this.#o.healthInterval > 0 && now >= (this.#nextCheck.get(u) ?? 0)) {
        this.#nextCheck.set(u, now + this.#o.healthInterval);
        void u.check(this.#o.healthCheck, this.#o.healthTimeout);
      }
    }
    // An ejection that ran out, or slow start moving on: recompute cheaply.
    const before = this.#routable;
    this.#recompute();
    if (before !== this.#routable || changed) {
      for (const u of this.#routable) {
        if (!before.includes(u) && u.available) this.#events?.onCapacity(u);
      }
    }
  }

  /**
   * Replaces the configured upstreams (a config reload): new ones join and
   * warm up, removed ones drain (no new requests; those in flight finish),
   * kept ones keep their connections, health and in-flight requests.
   *
   * @returns The addresses or names added and removed.
   */
  async setSpecs(specs: readonly UpstreamSpec[]): Promise<{ added: string[]; removed: string[] }> {
    const added: string[] = [];
    const removed: string[] = [];
    const statics = new Map<string, Extract<UpstreamSpec, { kind: "static" }>>();
    const discovered = new Map<string, Exclude<UpstreamSpec, { kind: "static" }>>();
    for (const spec of specs) {
      if (spec.kind === "static") statics.set(upstreamLabel(spec.address, spec.tls === true), spec);
      else discovered.set(spec.text, spec);
    }
    for (const u of [...this.#members.values()]) {
      if (u.source === "static" && !u.draining && !statics.has(u.label)) {
        log.info(`Upstream ${u.label} removed from the configuration: draining it`);
        u.drain();
        removed.push(u.label);
      }
    }
    for (const [label, spec] of statics) {
      const known = this.#members.get(label);
      if (known && !known.draining && known.source === "static") {
        known.weight = spec.weight;
        continue;
      }
      const u = this.#add(spec.address, spec.weight, "static", this.#tls(spec.tls, undefined));
      added.push(label);
      log.info(`Upstream ${label} added by the configuration`);
      if (this.#started) void u.start();
    }
    for (const source of [...this.#sources]) {
      if (discovered.has(source.spec.text)) continue;
      clearTimeout(source.timer);
      this.#sources.splice(this.#sources.indexOf(source), 1);
      removed.push(source.spec.text);
      for (const label of source.members) {
        const u = this.#members.get(label);
        if (u && u.source === source.spec.text && !u.draining) {
          log.info(`Upstream ${label} left with ${source.spec.text}: draining it`);
          u.drain();
        }
      }
    }
    const fresh: Source[] = [];
    for (const [text, spec] of discovered) {
      if (this.#sources.some((s) => s.spec.text === text)) continue;
      const source: Source = { spec, members: new Set(), timer: undefined };
      this.#sources.push(source);
      fresh.push(source);
      added.push(text);
    }
    await Promise.all(fresh.map((s) => this.#refresh(s)));
    this.#recompute();
    return { added, removed };
  }

  /** Looks the discovered upstreams up again now. */
  async reload(): Promise<{ replaced: number; failed: number }> {
    for (const s of this.#sources) clearTimeout(s.timer);
    await Promise.all(this.#sources.map((s) => this.#refresh(s)));
    return { replaced: 0, failed: 0 };
  }

  /** Nothing is read on demand. */
  async refresh(): Promise<void> {}

  /** The upstreams' part of `proxy.stats`. */
  stats(): SetStats {
    return {
      socket_dir: null,
      workers: [],
      past_exits: [],
      upstreams: [...this.#members.values()].map((u) => u.stats()),
      totals: { spawns: 0, crashes: 0, worker_exits: 0, recycles: 0, ...this.#totals },
    };
  }

  /** Closes every connection and stops looking up. Idempotent. */
  close(_graceMs: number): Promise<void> {
    this.#closed = true;
    for (const s of this.#sources) clearTimeout(s.timer);
    for (const u of this.#members.values()) u.close();
    return Promise.resolve();
  }
}
