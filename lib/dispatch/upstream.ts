/**
 * An upstream: a remote MessagePack-RPC server (TCP, TLS or Unix socket) as one
 * host, reached through a small pool of multiplexed connections that
 * reconnect with exponential backoff and jitter. It keeps its own health
 * (active checks, passive outlier detection) and latency, and warms up
 * slowly after joining or recovering.
 *
 * @module
 */

import { type Address, connectWithin, formatAddress } from "../net/address.ts";
import type { TlsClientOptions } from "../net/tls.ts";
import { ErrorCode, type ErrorFormat, ProxyError, type WireError } from "../protocol/mod.ts";
import { getLogger } from "../log.ts";
import { backoffDelay } from "./backoff.ts";
import type { Call, Requester } from "./call.ts";
import { Endpoint } from "./endpoint.ts";
import type { TrackedHost } from "./endpoint_set.ts";
import { HealthCheckState, OutlierState } from "./health.ts";
import { PeakEwma } from "./peak_ewma.ts";
import { ServicePace } from "./service_pace.ts";
import type { UpstreamStats } from "./stats.ts";

/** How an upstream's health is checked actively. */
export type HealthCheck = "ping" | "connect";

/** The health checks, for flag validation. */
export const HEALTH_CHECKS: readonly HealthCheck[] = ["ping", "connect"];

/** Options of {@linkcode Upstream}. */
export interface UpstreamOptions {
  /** Unique host id. */
  id: number;
  /** Where it listens. */
  address: Address;
  /** Speak TLS to it, trusting these CAs and checking this name. */
  tls?: TlsClientOptions;
  /** Its share of requests. */
  weight: number;
  /** Where it came from: `static`, or the discovery name. */
  source: string;
  /** Connections kept open to it. */
  connections: number;
  /** Milliseconds a connection attempt may take. */
  connectTimeout: number;
  /** Requests it may have in flight over all its connections. */
  maxInFlight: number;
  /** Unwritten bytes per connection above which it takes no new requests. */
  writeLimit: number;
  /** Largest message accepted from it. */
  maxMessageSize: number;
  /** How errors are written when it sends a request of its own. */
  errorFormat: ErrorFormat;
  /** Measure each answer's latency (for `--balance ewma`). @default {false} */
  timed?: boolean;
  /** Milliseconds over which a joined or recovered upstream ramps up to its weight; 0 = at once. */
  slowStartMs: number;
  /** Transport failures in a row that make it an outlier. */
  consecutiveFailures: number;
  /** Passing active checks in a row that make it healthy again. */
  rise: number;
  /** Failing active checks in a row that make it unhealthy. */
  fall: number;
  /** Opens a connection (tests inject one). @default {connectWithin} */
  connect?: (address: Address, timeoutMs: number) => Promise<Deno.Conn>;
  /** The clock (ms). @default {performance.now} */
  now?: () => number;
  /** Randomness for the reconnect jitter. @default {Math.random} */
  random?: () => number;
  /** After each answer. */
  onAnswer?: (upstream: Upstream, call: Call | null) => void;
  /** When it can take requests it could not before (connected, recovered). */
  onChange?: (upstream: Upstream) => void;
  /** Requests it will never answer (a connection broke with them on it). */
  onOrphans?: (upstream: Upstream, calls: Call[], error: WireError) => void;
  /** It failed `consecutiveFailures` times in a row: the set may eject it. */
  onOutlier?: (upstream: Upstream) => void;
}

const log = getLogger(["upstream"]);

/**
 * How an upstream is named in logs, stats and its set: `HOST:PORT`,
 * `unix:/path`, or `tls:HOST:PORT`.
 */
export function upstreamLabel(address: Address, tls: boolean): string {
  return `${tls ? "tls:" : ""}${formatAddress(address)}`;
}

/** A remote server and its connections. */
export class Upstream implements TrackedHost {
  readonly id: number;
  readonly label: string;
  readonly address: Address;
  readonly source: string;
  readonly key = undefined;
  readonly pid = null;
  readonly #o: UpstreamOptions;
  readonly #now: () => number;
  readonly #endpoints: (Endpoint | null)[];
  readonly #attempts: number[]; // failed connects in a row, per connection
  readonly #timers: (ReturnType<typeof setTimeout> | undefined)[];
  readonly #health: HealthCheckState;
  readonly #outlier: OutlierState;
  readonly #ewma: PeakEwma;
  readonly #pace: ServicePace;
  #weight: number;
  #warmSince = -1; // when it last became routable (slow start)
  #wasRoutable = false;
  #draining = false;
  #closed = false;
  #failures = 0;
  #servedBefore = 0; // answers on connections since closed
  #everConnected = false;
  #lastError = "";
  #tlsRefused = false; // its last connection attempt failed the TLS handshake
  #checking = false;

  /** @param options Address, limits, health rules and whom to tell. */
  constructor(options: UpstreamOptions) {
    this.#o = options;
    this.id = options.id;
    this.address = options.address;
    this.label = upstreamLabel(options.address, options.tls !== undefined);
    this.source = options.source;
    this.#weight = options.weight;
    this.#now = options.now ?? (() => performance.now());
    this.#endpoints = new Array(options.connections).fill(null);
    this.#attempts = new Array(options.connections).fill(0);
    this.#timers = new Array(options.connections).fill(undefined);
    this.#health = new HealthCheckState(options.rise, options.fall);
    this.#outlier = new OutlierState(options.consecutiveFailures);
    this.#ewma = new PeakEwma({ now: this.#now });
    this.#pace = new ServicePace({ now: this.#now });
  }

  /** Its configured share of requests. */
  get weight(): number {
    return this.#weight;
  }

  /** Changes its weight (rediscovered with another one). */
  set weight(w: number) {
    this.#weight = w;
  }

  /** 0.1 to 1 while it warms up after joining or recovering, then 1. */
  get warmth(): number {
    if (this.#o.slowStartMs <= 0 || this.#warmSince < 0) return 1;
    const t = (this.#now() - this.#warmSince) / this.#o.slowStartMs;
    return t >= 1 ? 1 : Math.max(0.1, t);
  }

  /** Connections open now. */
  get connected(): number {
    let n = 0;
    for (const e of this.#endpoints) if (e && !e.closed) n++;
    return n;
  }

  /** Requests in flight (not timed out). */
  get inFlight(): number {
    let n = 0;
    for (const e of this.#endpoints) if (e) n += e.inFlight;
    return n;
  }

  /** Requests it works on, those answered `TIMEOUT` included. */
  get load(): number {
    let n = 0;
    for (const e of this.#endpoints) if (e) n += e.load;
    return n;
  }

  /** Requests answered. */
  get served(): number {
    let n = this.#servedBefore;
    for (const e of this.#endpoints) if (e) n += e.served;
    return n;
  }

  /** Peak-EWMA latency (ms). */
  get latencyMs(): number {
    return this.#ewma.value;
  }

  /** Microseconds of work per answer (0 until measured). */
  get paceUs(): number {
    return this.#pace.us;
  }

  /** True while passive detection keeps it out. */
  get ejected(): boolean {
    return this.#outlier.ejected(this.#now());
  }

  /** True once it left the set: it finishes what it has and takes nothing new. */
  get draining(): boolean {
    return this.#draining;
  }

  /** True when its active checks pass. */
  get healthy(): boolean {
    return this.#health.healthy;
  }

  /** Connected, healthy, not ejected, not draining: it may be balanced to. */
  get routable(): boolean {
    const r = !this.#closed && !this.#draining && this.connected > 0 && this.#health.healthy &&
      !this.#outlier.ejected(this.#now());
    if (r && !this.#wasRoutable) this.#warmSince = this.#everConnectedWarm();
    this.#wasRoutable = r;
    return r;
  }

  // A host that joins or comes back ramps up; the very first connection of a
  // proxy that just started does not (nothing else could take the load).
  #everConnectedWarm(): number {
    return this.#o.slowStartMs > 0 ? this.#now() : -1;
  }

  /**
   * False when it has no connection and its last attempt failed the TLS
   * handshake: waiting for it would not help (a certificate needs fixing),
   * so requests are not held for it.
   */
  get reachable(): boolean {
    return this.connected > 0 || !this.#tlsRefused;
  }

  /** The last connection or check error ("" when none). */
  get lastError(): string {
    return this.#lastError;
  }

  /** Connected (in any state but closed) and under its limits: it can take a request now. */
  get available(): boolean {
    if (this.#closed || this.#draining || this.load >= this.#o.maxInFlight) return false;
    for (const e of this.#endpoints) if (e && e.writable) return true;
    return false;
  }

  /** `connecting`, `healthy`, `unhealthy`, `ejected` or `draining`. */
  get state(): string {
    if (this.#draining) return "draining";
    if (this.#outlier.ejected(this.#now())) return "ejected";
    if (this.connected === 0) return "connecting";
    return this.#health.healthy ? "healthy" : "unhealthy";
  }

  /** Opens its connections; resolves once one is open or each has failed once. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      let settled = 0;
      for (let i = 0; i < this.#endpoints.length; i++) {
        void this.#connect(i).then(() => {
          settled++;
          if (this.connected > 0 || settled === this.#endpoints.length) resolve();
        });
      }
    });
  }

  // Opens one connection (its TLS handshake included).
  #open(timeoutMs: number): Promise<Deno.Conn> {
    if (this.#o.connect) return this.#o.connect(this.address, timeoutMs);
    const tls = this.#o.tls;
    return connectWithin(this.address, { timeout: timeoutMs, ...(tls ? { tls } : {}) });
  }

  async #connect(slot: number): Promise<void> {
    if (this.#closed || this.#draining) return;
    let conn: Deno.Conn;
    try {
      conn = await this.#open(this.#o.connectTimeout);
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#tlsRefused = err instanceof ProxyError && err.code === ErrorCode.TLS_FAILED;
      if (this.#attempts[slot] === 0) {
        if (this.#tlsRefused) {
          log.error(
            `Upstream ${this.label}: ${this.#lastError} (check --upstream-ca and the name in its certificate); ` +
              "requests are not held for it until a connection succeeds",
          );
        } else log.warn(`Upstream ${this.label}: ${this.#lastError}`);
      }
      this.#attempts[slot]!++;
      this.#failures++;
      this.#scheduleReconnect(slot);
      return;
    }
    if (this.#closed || this.#draining) {
      conn.close();
      return;
    }
    if (this.#attempts[slot]! > 0) log.info(`Upstream ${this.label}: connected again`);
    this.#attempts[slot] = 0;
    this.#tlsRefused = false;
    this.#everConnected = true;
    this.#endpoints[slot] = new Endpoint(conn, {
      label: this.label,
      maxMessageSize: this.#o.maxMessageSize,
      writeLimit: this.#o.writeLimit,
      errorFormat: this.#o.errorFormat,
      now: this.#now,
      timed: this.#o.timed ?? false,
      pace: this.#pace,
      onAnswer: (_e, call, ms) => {
        if (ms > 0) this.#ewma.observe(ms);
        this.#outlier.recordSuccess();
        this.#o.onAnswer?.(this, call);
      },
      onFreed: () => this.#o.onAnswer?.(this, null),
      onProtocolError: (_e, message) => log.warn(`Upstream ${this.label} ${message}`),
      onClose: (e, orphans) => this.#onClose(slot, e, orphans),
    });
    this.#o.onChange?.(this);
  }

  #onClose(slot: number, endpoint: Endpoint, orphans: Call[]): void {
    if (this.#endpoints[slot] === endpoint) this.#endpoints[slot] = null;
    this.#servedBefore += endpoint.served;
    if (orphans.length > 0) {
      this.#failures++;
      if (this.#outlier.recordFailure()) this.#o.onOutlier?.(this);
      this.#o.onOrphans?.(this, orphans, {
        code: ErrorCode.UPSTREAM_FAILED,
        message: `Cannot answer: the connection to upstream ${this.label} broke`,
        data: { upstream: this.label },
      });
    }
    this.#o.onChange?.(this);
    if (!this.#closed && !this.#draining) {
      if (this.#attempts[slot] === 0) log.warn(`Upstream ${this.label}: connection lost`);
      this.#scheduleReconnect(slot);
    } else if (this.#draining && this.load === 0) this.close();
  }

  #scheduleReconnect(slot: number): void {
    if (this.#closed || this.#draining || this.#timers[slot] !== undefined) return;
    const delay = backoffDelay(this.#attempts[slot]!, {
      baseMs: 100,
      capMs: 10_000,
      jitter: 0.5,
      random: this.#o.random ?? Math.random,
    });
    this.#timers[slot] = setTimeout(() => {
      this.#timers[slot] = undefined;
      void this.#connect(slot);
    }, delay);
  }

  /** Sends a request on the first writable connection under its share, else the least loaded. */
  send(call: Call): void {
    // One connection at a time, as Envoy's HTTP/2 pool does: the next takes
    // requests once this one carries its share of the in-flight limit (or
    // cannot be written). Spread over every connection, one pipelined client
    // is cut into smaller writes and reads on both sides: 1.6x the CPU per
    // request at 1 x 16 with 2 connections (bench/2026-11-25-targets.md).
    const share = Math.ceil(this.#o.maxInFlight / this.#endpoints.length);
    let least: Endpoint | null = null;
    for (const e of this.#endpoints) {
      if (!e || !e.writable) continue;
      if (e.load < share) {
        e.send(call);
        return;
      }
      if (least === null || e.load < least.load) least = e;
    }
    least!.send(call);
  }

  /** Sends a notification on one of its connections. */
  notify(frame: Uint8Array): boolean {
    for (const e of this.#endpoints) if (e && e.writable) return e.notify(frame);
    return false;
  }

  /** Times out calls past their deadline; each timeout counts as a transport failure. */
  sweep(now: number, onTimeout: (call: Call) => void): Call | undefined {
    let oldest: Call | undefined;
    for (const e of this.#endpoints) {
      if (!e) continue;
      const o = e.sweep(now, (call) => {
        this.#failures++;
        if (this.#outlier.recordFailure()) this.#o.onOutlier?.(this);
        onTimeout(call);
      });
      if (o && (oldest === undefined || o.startedAt < oldest.startedAt)) oldest = o;
    }
    return oldest;
  }

  /** Forgets the calls of a requester that went away. */
  cancelFor(requester: Requester): void {
    for (const e of this.#endpoints) e?.cancelFor(requester);
  }

  /**
   * A request stuck on a remote server: nothing to kill here (the server is
   * not ours to restart); the request has its TIMEOUT already.
   */
  abort(_reason: string): void {}

  /** Remote servers have no output here. */
  lastLines(): string[] {
    return [];
  }

  /** Ejects it for a while (the set decided); returns for how long. */
  eject(baseMs: number, maxMs: number): number {
    const ms = this.#outlier.eject(this.#now(), baseMs, maxMs);
    log.warn(`Upstream ${this.label} ejected for ${ms} ms after repeated failures`);
    return ms;
  }

  /** Ends an ejection early. */
  release(): void {
    this.#outlier.release();
  }

  /** Runs one active health check; true when the verdict changed. */
  async check(mode: HealthCheck, timeoutMs: number): Promise<boolean> {
    if (this.#checking || this.#closed || this.#draining) return false;
    this.#checking = true;
    let passed = false;
    try {
      if (mode === "connect") {
        const conn = await this.#open(timeoutMs);
        conn.close();
        passed = true;
      } else {
        const e = this.#endpoints.find((x) => x && !x.closed);
        if (e) {
          await e.request("ping", [], timeoutMs);
          passed = true;
        }
      }
    } catch (err) {
      this.#lastError = (err as Error).message;
    } finally {
      this.#checking = false;
    }
    const changed = this.#health.record(passed);
    if (changed) {
      log.warn(
        `Upstream ${this.label} is ${passed ? "healthy again" : `unhealthy: ${this.#lastError}`}`,
      );
      this.#o.onChange?.(this);
    }
    return changed;
  }

  /** Leaves the set: no new requests; it closes once its requests are answered. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (let i = 0; i < this.#timers.length; i++) {
      clearTimeout(this.#timers[i]);
      this.#timers[i] = undefined;
    }
    if (this.load === 0) this.close();
    this.#o.onChange?.(this);
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes its connections; calls on them go to `onOrphans`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (let i = 0; i < this.#timers.length; i++) clearTimeout(this.#timers[i]);
    for (const e of this.#endpoints) e?.close();
  }

  /** Its line of `proxy.stats`. */
  stats(): UpstreamStats {
    return {
      address: this.label,
      source: this.source,
      weight: this.#weight,
      state: this.state,
      in_flight: this.inFlight,
      served: this.served,
      failures: this.#failures,
      ejections: this.#outlier.ejections,
      ewma_ms: Math.round(this.#ewma.value * 1000) / 1000,
      pace_us: Math.round(this.#pace.us * 10) / 10,
      connections: this.connected,
    };
  }
}
