/**
 * What the dispatcher needs of a set of hosts, whoever owns its membership:
 * the supervisor of local worker processes, or the set of upstream servers.
 *
 * @module
 */

import type { WireError } from "../protocol/mod.ts";
import type { Call, Requester } from "./call.ts";
import type { Host } from "./host.ts";
import type { SetStats } from "./stats.ts";

/** Where a call may go, as its set sees it. */
export type Placement =
  /** Any of these hosts (a balancer picks; none may be free now). */
  | { readonly hosts: readonly Host[]; readonly pin?: undefined; readonly error?: undefined }
  /**
   * Only this pin's host (a `dedicated` key's worker): `host` when it exists
   * and is ready, else the call waits under `pin` until it is.
   */
  | {
    readonly pin: string;
    readonly host: Host | null;
    readonly hosts?: undefined;
    readonly error?: undefined;
  }
  /** Nowhere: answer the call with this error. */
  | { readonly error: WireError; readonly hosts?: undefined; readonly pin?: undefined };

/** What a set tells its dispatcher. */
export interface SetEvents {
  /**
   * A host can take calls now (it got ready, or answered one): calls waiting
   * for it, or for any host, may go.
   */
  onCapacity(host: Host): void;
  /**
   * A host answered `call` (null: a call it had been freed of ended), so it
   * may take another now.
   */
  onAnswer(host: Host, call: Call | null): void;
  /** A host answered `call` but takes no more (it is retiring). */
  onAnswered?(host: Host, call: Call): void;
  /**
   * Calls a host will never answer (it died, its connection broke): the
   * dispatcher retries them elsewhere or answers `error`.
   */
  onOrphans(host: Host, calls: Call[], error: WireError): void;
  /**
   * No host will serve the calls waiting under `pin` (or, undefined, any
   * unpinned call) for now: answer them `error`.
   */
  onStranded(pin: string | undefined, error: WireError): void;
  /** Calls waiting under `pin` in the dispatcher's queue. */
  waiting(pin: string): number;
}

/** A host the dispatcher checks for deadlines and cancels calls at. */
export interface TrackedHost extends Host {
  /** Requests sent and not yet answered nor timed out. */
  readonly inFlight: number;
  /** Moves calls past their deadline out of flight; returns the oldest it still works on. */
  sweep(now: number, onTimeout: (call: Call) => void): Call | undefined;
  /** Forgets the calls of a requester that went away. */
  cancelFor(requester: Requester): void;
  /** Ends a host stuck on a call (kills a worker, drops a connection). */
  abort(reason: string): void;
  /** Its last lines of output, for the slow log (none for remote hosts). */
  lastLines(): string[];
  /** Its pid, for the slow log (null for remote hosts). */
  readonly pid: number | null;
}

/** A set of hosts and their membership. */
export interface EndpointSet {
  /**
   * Starts the hosts wanted up front and waits until they are ready.
   *
   * @throws {ProxyError} `NO_WORKERS` (or `UPSTREAM_FAILED`) when none can start.
   */
  start(events: SetEvents): Promise<void>;
  /**
   * Where `call` may go. For unpinned calls, `hosts` is the same array until
   * membership changes (balancers cache what they derive from it).
   */
  place(call: Call): Placement;
  /** A call was sent to `host` (sets count requests to retire hosts). */
  sent(host: Host, call: Call): void;
  /** `waiting` unpinned calls found no host: add capacity if the set can. */
  demand(waiting: number): void;
  /** True when some host is ready or may become ready soon. */
  live(): boolean;
  /** The error for calls that no host can take now (e.g. `NO_WORKERS` with the last output). */
  unavailable(): WireError;
  /** Every host that may have calls in flight (ready, draining, retiring). */
  tracked(): Iterable<TrackedHost>;
  /** Periodic work: idle stops, memory checks, health checks. */
  housekeep(now: number): void;
  /** Replaces the hosts one at a time (local workers), or re-resolves (upstreams). */
  reload(): Promise<{ replaced: number; failed: number }>;
  /** Reads what is read on demand (worker memory) before stats. */
  refresh(): Promise<void>;
  /** The set's part of `proxy.stats`. */
  stats(): SetStats;
  /** Stops every host (SIGKILL or close after `graceMs`). Idempotent. */
  close(graceMs: number): Promise<void>;
}
