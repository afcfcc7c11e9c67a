/**
 * What a balancer picks from and the dispatcher sends to: a local worker
 * process or a remote upstream server, behind one interface.
 *
 * @module
 */

import type { Call } from "./call.ts";

/** A destination for requests. */
export interface Host {
  /** Unique among the hosts of a dispatcher. */
  readonly id: number;
  /** For logs and stats: `worker 3`, `127.0.0.1:9000`. */
  readonly label: string;
  /** The routing key it is dedicated to (`dedicated` pool mode). */
  readonly key: string | undefined;
  /** Relative share of requests, as configured (balancers divide load by it). */
  readonly weight: number;
  /**
   * 0 to 1: the share of its weight a host takes while it warms up after
   * joining or recovering (slow start); 1 when warm. Hashing ignores it.
   */
  readonly warmth: number;
  /**
   * Requests sent and not answered, counting those already answered
   * `TIMEOUT` that the host still works on: a host is not idle because its
   * requests timed out.
   */
  readonly load: number;
  /** Requests answered so far. */
  readonly served: number;
  /** Peak-EWMA latency in ms (0 until measured). */
  readonly latencyMs: number;
  /**
   * Microseconds of work per answer while it has requests outstanding
   * (see `ServicePace`); 0 until measured.
   */
  readonly paceUs: number;
  /** True when it can take a request now: ready, not draining, under its limits. */
  readonly available: boolean;
  /** Sends a request (only when `available`). */
  send(call: Call): void;
  /** Sends a notification; false when dropped (the host does not read). */
  notify(frame: Uint8Array): boolean;
}
