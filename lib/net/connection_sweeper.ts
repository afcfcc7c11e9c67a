/**
 * One timer per server that enforces the time limits of all its connections
 * (a message begun and never finished, a connection idle too long), instead
 * of a timer per connection reset on every read.
 *
 * @module
 */

import type { SweepLimits } from "./frame_connection.ts";

/** A connection the sweeper checks (a `FrameConnection` is one). */
export interface Sweepable {
  /** Applies the limits at time `now`; says what it closed for, if anything. */
  sweep(now: number, limits: SweepLimits): string | null;
}

/** Options of {@linkcode ConnectionSweeper}. */
export interface ConnectionSweeperOptions {
  /** The limits. */
  limits: SweepLimits;
  /** Called for each connection closed, with the reason (for counters, logs). */
  onSwept?: (reason: string) => void;
  /** The clock. @default {performance.now} */
  now?: () => number;
  /**
   * Milliseconds between checks.
   * @default {a quarter of the smallest limit, from 100 ms to 1 s}
   */
  intervalMs?: number;
}

/**
 * Checks every connection on a timer. Idempotent `close()`.
 *
 * @example Usage
 * ```ts
 * import { ConnectionSweeper } from "./connection_sweeper.ts";
 * const sweeper = new ConnectionSweeper({ limits: { messageTimeout: 30_000, idleTimeout: 0 } });
 * sweeper.add({ sweep: () => null });
 * sweeper.close();
 * ```
 */
export class ConnectionSweeper {
  readonly #conns = new Set<Sweepable>();
  readonly #limits: SweepLimits;
  readonly #onSwept: ((reason: string) => void) | undefined;
  readonly #now: () => number;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** @param options Limits, clock, interval. */
  constructor(options: ConnectionSweeperOptions) {
    this.#limits = options.limits;
    this.#onSwept = options.onSwept;
    this.#now = options.now ?? (() => performance.now());
    const limits = [options.limits.messageTimeout, options.limits.idleTimeout].filter((l) => l > 0);
    this.#intervalMs = options.intervalMs ??
      Math.min(1000, Math.max(100, Math.min(...limits, 4000) / 4));
  }

  /** Watches a connection (until {@linkcode ConnectionSweeper.delete}). */
  add(conn: Sweepable): void {
    if (this.#closed) return;
    this.#conns.add(conn);
    this.#timer ??= setInterval(() => this.sweep(), this.#intervalMs);
  }

  /** Stops watching a connection; the timer stops with the last one. */
  delete(conn: Sweepable): void {
    this.#conns.delete(conn);
    if (this.#conns.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Checks every connection now (the timer calls it; tests call it with a fake clock). */
  sweep(): void {
    const now = this.#now();
    for (const conn of [...this.#conns]) {
      const reason = conn.sweep(now, this.#limits);
      if (reason !== null) this.#onSwept?.(reason);
    }
  }

  /** Stops the timer. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#conns.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
