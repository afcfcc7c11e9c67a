/**
 * The dispatcher: admission, the bounded queue, deadlines, retries,
 * cancellation and stats. It sends each request to a host its balancer
 * picks among those its endpoint set offers, and does not know whether a
 * host is a child process or a server in another rack.
 *
 * In words (undici's `pool-base`): `dispatch(call) { const h = pick(call);
 * h ? h.send(call) : queue.push(call) }`, and when a host frees up,
 * `while (h.available && queue.length) h.send(queue.shift())`.
 *
 * @module
 */

import { ErrorCode, type WireError } from "../protocol/mod.ts";
import { getLogger } from "../log.ts";
import type { Balancer } from "./balancers/balancer.ts";
import { Call, type Requester } from "./call.ts";
import type { EndpointSet, TrackedHost } from "./endpoint_set.ts";
import type { Host } from "./host.ts";
import type { RequestObserver } from "./observer.ts";
import { formatDigest, paramsDigest } from "./params_digest.ts";
import { FrameArena } from "./frame_arena.ts";
import { RequestQueue } from "./request_queue.ts";
import { RetryBudget } from "./retry_budget.ts";
import type { SetStats, WorkerTotals } from "./stats.ts";

/** Options of {@linkcode Dispatcher}. */
export interface DispatcherOptions {
  /** The hosts. */
  set: EndpointSet;
  /** Picks a host per request. */
  balancer: Balancer;
  /** What `proxy.stats` calls the arrangement (e.g. the pool mode). */
  mode: string;
  /** Requests that may wait when no host can take them. */
  queueSize: number;
  /** Milliseconds a request may wait. */
  queueTimeout: number;
  /** Milliseconds before a request is answered `TIMEOUT`; 0 = never. */
  requestTimeout: number;
  /** Per-method overrides of `requestTimeout`. */
  methodTimeouts: Readonly<Record<string, number>>;
  /** Milliseconds after which a host still busy with one request is aborted; 0 = never. */
  killAfter: number;
  /** Methods sent once more to another host when theirs fails, or `"all"`. */
  retry: readonly string[] | "all";
  /** Retries allowed per request sent (the retry budget), beyond 10 a second. @default {0.2} */
  retryRatio?: number;
  /**
   * Calls that may wait for one particular host (a hashed key's); beyond,
   * `UPSTREAM_OVERLOADED`.
   * @default {Infinity}
   */
  maxPendingPerHost?: number;
  /** Measure each request's latency precisely (for latency-aware balancing). @default {false} */
  timed?: boolean;
  /**
   * Told of every request answered (metrics, the access log); set it later
   * with {@linkcode Dispatcher.observe}. @default {null}
   */
  observer?: RequestObserver | null;
  /**
   * Milliseconds between housekeeping runs (deadlines, queue timeouts); 0
   * runs none (tests call {@linkcode Dispatcher.housekeep} themselves).
   * @default {50}
   */
  housekeepingMs?: number;
  /** The clock (ms). @default {performance.now} */
  now?: () => number;
}

/** The dispatcher's counters, in `proxy.stats` `totals`. */
export interface DispatchTotals {
  requests: number;
  answered: number;
  timeouts: number;
  kills: number;
  retries: number;
  retries_refused: number;
  queue_full: number;
  queue_timeouts: number;
  overloaded: number;
  notifications_dropped: number;
}

/** What `proxy.stats` shows of dispatch. */
export interface DispatchStats extends Omit<SetStats, "totals"> {
  /** The pool mode, or `upstreams`. */
  mode: string;
  queue: { length: number; capacity: number };
  totals: DispatchTotals & WorkerTotals & Record<string, number>;
}

// A call that is never sent: asks the set where a request could go.
const PROBE = new Call(
  { closed: true, deliver() {}, fail() {} },
  0,
  "proxy.readyz",
  new Uint8Array(0),
  0,
  undefined,
);

/** The pin of calls waiting for one particular host. */
export function hostPin(host: Host): string {
  return `host:${host.id}`;
}

function shuttingDown(): WireError {
  return {
    code: ErrorCode.SHUTTING_DOWN,
    message: "Cannot forward request: the proxy is shutting down",
  };
}

/**
 * Sends requests to hosts. Call {@linkcode Dispatcher.start} once, then
 * {@linkcode Dispatcher.submit} per request.
 */
export class Dispatcher {
  /** The arrangement's name, for stats. */
  readonly mode: string;
  readonly #set: EndpointSet;
  readonly #balancer: Balancer;
  readonly #queue: RequestQueue;
  readonly #copies = new FrameArena(); // queued and retryable frames
  #queueTimeout: number;
  #requestTimeout: number;
  #killAfter: number;
  #methodTimeouts: Map<string, number>;
  #deadlines: boolean;
  readonly #timed: boolean;
  #retryAll: boolean;
  #retry: Set<string>;
  #budget: RetryBudget | null;
  readonly #retryRatio: number;
  readonly #maxPendingPerHost: number;
  readonly #housekeepingMs: number;
  readonly #now: () => number;
  #clock: number;
  #observer: RequestObserver | null;

  #housekeeping: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  #idleWaiters: (() => void)[] = [];
  readonly #slowLog = getLogger(["slow"]);
  readonly #totals: DispatchTotals = {
    requests: 0,
    answered: 0,
    timeouts: 0,
    kills: 0,
    retries: 0,
    retries_refused: 0,
    queue_full: 0,
    queue_timeouts: 0,
    overloaded: 0,
    notifications_dropped: 0,
  };

  /** @param options The set, the balancer and the limits. */
  constructor(options: DispatcherOptions) {
    this.mode = options.mode;
    this.#set = options.set;
    this.#balancer = options.balancer;
    this.#queue = new RequestQueue(options.queueSize);
    this.#queueTimeout = options.queueTimeout;
    this.#requestTimeout = options.requestTimeout;
    this.#killAfter = options.killAfter;
    this.#methodTimeouts = new Map(Object.entries(options.methodTimeouts));
    this.#deadlines = this.#requestTimeout > 0 || this.#killAfter > 0 ||
      this.#methodTimeouts.size > 0;
    this.#timed = options.timed ?? false;
    this.#retryRatio = options.retryRatio ?? 0.2;
    this.#retryAll = options.retry === "all";
    this.#retry = new Set(options.retry === "all" ? [] : options.retry);
    this.#budget = this.#retryAll || this.#retry.size > 0
      ? new RetryBudget({ ratio: this.#retryRatio })
      : null;
    this.#maxPendingPerHost = options.maxPendingPerHost ?? Infinity;
    this.#housekeepingMs = options.housekeepingMs ?? 50;

    this.#now = options.now ?? (() => performance.now());
    this.#clock = this.#now();
    this.#observer = options.observer ?? null;
  }

  /**
   * Changes time limits and retries while running; requests already sent
   * keep the deadline they got.
   */
  reconfigure(
    changes: Partial<
      Pick<
        DispatcherOptions,
        "queueTimeout" | "requestTimeout" | "methodTimeouts" | "killAfter" | "retry"
      >
    >,
  ): void {
    if (changes.queueTimeout !== undefined) this.#queueTimeout = changes.queueTimeout;
    if (changes.requestTimeout !== undefined) this.#requestTimeout = changes.requestTimeout;
    if (changes.killAfter !== undefined) this.#killAfter = changes.killAfter;
    if (changes.methodTimeouts !== undefined) {
      this.#methodTimeouts = new Map(Object.entries(changes.methodTimeouts));
    }
    this.#deadlines = this.#requestTimeout > 0 || this.#killAfter > 0 ||
      this.#methodTimeouts.size > 0;
    if (changes.retry !== undefined) {
      this.#retryAll = changes.retry === "all";
      this.#retry = new Set(changes.retry === "all" ? [] : changes.retry);
      const wanted = this.#retryAll || this.#retry.size > 0;
      if (!wanted) this.#budget = null;
      else this.#budget ??= new RetryBudget({ ratio: this.#retryRatio });
    }
  }

  /** Sets (or, with null, removes) the observer of answered requests. */
  observe(observer: RequestObserver | null): void {
    this.#observer = observer;
  }

  /** The endpoint set, for tooling and tests. */
  get set(): EndpointSet {
    return this.#set;
  }

  /**
   * Starts the set (its hosts ready) and the housekeeping timer.
   *
   * @throws {ProxyError} When the set cannot start.
   */
  async start(): Promise<void> {
    await this.#set.start({
      onCapacity: (host) => this.#drain(host),
      onAnswer: (host, call) => {
        this.#totals.answered++;
        if (this.#observer !== null && call !== null) {
          this.#observer.answered(call, host, this.#now());
        }
        if (this.#queue.length > 0) this.#drain(host);
        else if (this.#idleWaiters.length > 0) this.#checkIdle();
      },
      onAnswered: (host, call) => {
        this.#totals.answered++;
        this.#observer?.answered(call, host, this.#now());
      },
      onOrphans: (host, calls, error) => this.#onOrphans(host, calls, error),
      onStranded: (pin, error) => this.#strand(pin, error),
      waiting: (pin) => this.#queue.lengthOf(pin),
    });
    // Deadlines, queue timeouts and the set's own chores share one timer.
    if (this.#housekeepingMs > 0) {
      this.#housekeeping = setInterval(() => this.housekeep(), this.#housekeepingMs);
    }
  }

  /**
   * Forwards a request to a host, or queues it. The frame is only read
   * during the call (copied when kept).
   *
   * @param requester Who gets the answer.
   * @param msgid The requester's msgid.
   * @param method The method.
   * @param frame The whole request frame.
   * @param tail Offset after the msgid in `frame`.
   * @param key The routing key (dedicated workers, hashing).
   */
  submit(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
    key?: string,
  ): void {
    this.#totals.requests++;
    if (this.#closing) {
      requester.fail(msgid, shuttingDown());
      return;
    }
    const call = new Call(requester, msgid, method, frame, tail, key);
    if (this.#observer !== null) call.arrivedAt = this.#now();
    if (this.#budget) {
      this.#budget.deposit();
      if (this.#retryAll || this.#retry.has(method)) call.retryable = true;
    }
    this.#route(call);
  }

  /**
   * Forwards a notification to one host (queued when none can take it). A
   * notification pinned to a key whose worker is not ready, or sent to a
   * host that does not read, is dropped and counted in
   * `totals.notifications_dropped`: nobody waits for an answer to it.
   */
  notify(requester: Requester, method: string, frame: Uint8Array, key?: string): void {
    if (this.#closing) return;
    const call = new Call(requester, 0, method, frame, 0, key, true);
    const place = this.#set.place(call);
    if (place.error) {
      this.#totals.notifications_dropped++;
      return;
    }
    if (place.pin !== undefined) {
      if (!(place.host?.available && place.host.notify(frame))) {
        this.#totals.notifications_dropped++;
      }
      return;
    }
    const host = this.#queue.lengthOf() === 0 ? this.#balancer.pick(place.hosts, call) : null;
    if (host?.available) {
      if (!host.notify(frame)) this.#totals.notifications_dropped++;
    } else this.#enqueue(call, undefined);
  }

  #route(call: Call): void {
    const place = this.#set.place(call);
    if (place.error) {
      this.#fail(call, place.error);
      return;
    }
    if (place.pin !== undefined) {
      const host = place.host;
      if (host && host.available && this.#queue.lengthOf(place.pin) === 0) this.#send(host, call);
      else this.#enqueue(call, place.pin);
      return;
    }
    if (this.#queue.lengthOf() === 0) {
      const host = this.#pick(place.hosts, call);
      if (host) {
        if (host.available) this.#send(host, call);
        else this.#enqueue(call, hostPin(host)); // its own host (hashing): wait for it
        return;
      }
    }
    if (!this.#set.live()) {
      this.#fail(call, this.#set.unavailable());
      return;
    }
    this.#enqueue(call, undefined);
    this.#set.demand(this.#queue.lengthOf());
  }

  // A retry goes to another host than the one that failed it.
  #pick(hosts: readonly Host[], call: Call): Host | null {
    if (call.avoid === null) return this.#balancer.pick(hosts, call);
    const others = hosts.filter((h) => h !== call.avoid);
    return this.#balancer.pick(others, call) ??
      (others.length === 0 ? this.#balancer.pick(hosts, call) : null);
  }

  #send(host: Host, call: Call): void {
    if (call.notification) {
      if (!host.notify(call.frame)) this.#totals.notifications_dropped++;
      return;
    }
    if (this.#deadlines || this.#timed) {
      // The housekeeping clock (50 ms steps) spares a clock read per request.
      const now = this.#timed ? this.#now() : this.#clock;
      call.startedAt = now;
      if (this.#deadlines) {
        const timeout = this.#methodTimeouts.size === 0
          ? this.#requestTimeout
          : this.#methodTimeouts.get(call.method) ?? this.#requestTimeout;
        const limit = timeout > 0 ? timeout : this.#killAfter;
        call.deadline = limit > 0 ? now + limit : 0;
        call.digest = paramsDigest(call.frame, call.tail, call.method);
      }
    }
    if (call.retryable) call.own(this.#copies); // kept for a second attempt
    if (this.#observer !== null) call.sentAt = this.#now();
    host.send(call);
    this.#set.sent(host, call);
  }

  #enqueue(call: Call, pin: string | undefined): void {
    if (
      pin !== undefined && pin.startsWith("host:") &&
      this.#queue.lengthOf(pin) >= this.#maxPendingPerHost
    ) {
      this.#totals.overloaded++;
      this.#fail(call, {
        code: ErrorCode.UPSTREAM_OVERLOADED,
        message:
          `Cannot queue ${call.method}: ${this.#maxPendingPerHost} requests already wait for its upstream`,
      });
      return;
    }
    call.own(this.#copies);
    call.queueDeadline = this.#clock + this.#queueTimeout;
    if (!this.#queue.push(call, pin)) {
      this.#totals.queue_full++;
      this.#fail(call, {
        code: ErrorCode.QUEUE_FULL,
        message:
          `Cannot queue ${call.method}: all workers busy and ${this.#queue.capacity} requests already waiting`,
      });
    }
  }

  #fail(call: Call, error: WireError, host: Host | null = null): void {
    if (call.notification) {
      this.#totals.notifications_dropped++;
      return;
    }
    if (!call.requester.closed) call.requester.fail(call.msgid, error);
    this.#observer?.failed(call, error.code, host, this.#now());
    if (this.#idleWaiters.length > 0) this.#checkIdle();
  }

  // Hands waiting calls to a host that can take them: its own first (its
  // key's, its pin's), then any unpinned ones.
  #drain(host: Host): void {
    if (this.#queue.length > 0 && !this.#closing) {
      // Pinned calls first; most of the time there are none (and no pin to build).
      if (this.#queue.length !== this.#queue.lengthOf()) {
        if (host.key !== undefined) this.#drainPin(`key:${host.key}`, host);
        this.#drainPin(hostPin(host), host);
      }
      const queue = this.#queue;
      while (queue.lengthOf() > 0) {
        const call = queue.peek()!;
        if (call.requester.closed) {
          queue.shift();
          continue;
        }
        const place = this.#set.place(call);
        if (!place.hosts) {
          queue.shift();
          this.#route(call);
          continue;
        }
        const next = this.#pick(place.hosts, call);
        if (!next) break;
        queue.shift();
        if (next.available) this.#send(next, call);
        else if (!queue.push(call, hostPin(next))) this.#fail(call, this.#set.unavailable());
      }
    }
    if (this.#idleWaiters.length > 0) this.#checkIdle();
  }

  #drainPin(pin: string, host: Host): void {
    const queue = this.#queue;
    while (host.available && queue.lengthOf(pin) > 0) {
      const call = queue.shift(pin)!;
      if (!call.requester.closed) this.#send(host, call);
    }
  }

  // Calls a host will never answer: once more elsewhere for idempotent
  // methods (within the retry budget), else the host's error.
  #onOrphans(host: Host, calls: Call[], error: WireError): void {
    for (const call of calls) {
      if (call.requester.closed) continue;
      if (call.retryable && call.attempts < 2 && !this.#closing) {
        if (this.#budget!.tryRetry()) {
          this.#totals.retries++;
          call.avoid = host;
          call.deadline = 0;
          this.#route(call);
          continue;
        }
        this.#totals.retries_refused++;
      }
      this.#fail(call, error, host);
    }
    this.#checkIdle();
  }

  // No host will serve these for now (a crash loop): answer them.
  #strand(pin: string | undefined, error: WireError): void {
    const stranded = this.#queue.remove((call) =>
      pin === undefined ? true : call.key !== undefined && `key:${call.key}` === pin
    );
    for (const call of stranded) this.#fail(call, error);
  }

  /** Answers queue timeouts and deadlines, and runs the set's chores (the timer calls it). */
  housekeep(): void {
    if (this.#closing) return;
    const now = this.#clock = this.#now();
    if (this.#queue.length > 0) {
      for (const call of this.#queue.expire((c) => c.queueDeadline <= now)) {
        if (call.notification) continue;
        this.#totals.queue_timeouts++;
        this.#fail(call, {
          code: ErrorCode.QUEUE_TIMEOUT,
          message: `Cannot forward ${call.method}: no worker free within ${this.#queueTimeout} ms`,
        });
      }
    }
    if (this.#deadlines) this.#sweepDeadlines(now);
    this.#set.housekeep(now);
  }

  #sweepDeadlines(now: number): void {
    for (const host of this.#set.tracked()) {
      const oldest = host.sweep(now, (call) => {
        this.#totals.timeouts++;
        if (!call.requester.closed) {
          call.requester.fail(call.msgid, {
            code: ErrorCode.TIMEOUT,
            message: `Cannot answer ${call.method}: no answer within ${
              Math.round(call.deadline - call.startedAt)
            } ms`,
          });
        }
        this.#observer?.failed(call, ErrorCode.TIMEOUT, host, now);
      });
      if (!oldest || this.#killAfter === 0) continue;
      const elapsed = now - oldest.startedAt;
      const limit = Math.max(this.#killAfter, oldest.deadline - oldest.startedAt);
      if (elapsed > limit) this.#abortStuck(host, oldest, elapsed);
    }
    if (this.#idleWaiters.length > 0) this.#checkIdle();
  }

  #abortStuck(host: TrackedHost, oldest: Call, elapsed: number): void {
    this.#totals.kills++;
    const lines = host.lastLines();
    const ms = Math.round(elapsed);
    this.#slowLog.warn(
      `Slow request: ${host.label}${
        host.pid === null ? "" : ` (pid ${host.pid})`
      } killed after ${ms} ms on ` +
        `method=${oldest.method} params_digest=${formatDigest(oldest.digest)} elapsed_ms=${ms}; ` +
        `last output: ${lines.length > 0 ? lines.slice(-5).join(" | ") : "(none)"}`,
    );
    host.abort(`stuck on ${oldest.method} for ${ms} ms`);
  }

  /** Replaces the hosts one at a time (see the set's `reload`). */
  reload(): Promise<{ replaced: number; failed: number }> {
    return this.#set.reload();
  }

  /** Reads what the stats show on demand (worker memory). */
  readMemory(): Promise<void> {
    return this.#set.refresh();
  }

  /** Drops the queued calls of a requester that went away and frees its places at hosts. */
  forget(requester: Requester): void {
    if (this.#queue.length > 0) this.#queue.remove((call) => call.requester === requester);
    for (const host of this.#set.tracked()) host.cancelFor(requester);
    if (this.#queue.length > 0) {
      for (const host of this.#set.tracked()) if (host.available) this.#drain(host);
    }
    this.#checkIdle();
  }

  /**
   * Null when a request could be served now or soon (a host is free, or one
   * can be started), else why not.
   */
  notReady(): string | null {
    if (this.#closing) return "stopping";
    // Pools that start workers on demand are ready while they can.
    if (this.mode !== "static" && this.mode !== "upstreams" && this.#set.live()) return null;
    // Busy hosts count: a request waits in the queue for them.
    const place = this.#set.place(PROBE);
    if (place.hosts && place.hosts.length > 0) return null;
    return this.#set.unavailable().message.replace(/^Cannot forward request: /, "");
  }

  /** Requests in flight at hosts plus those waiting. */
  get pending(): number {
    let n = this.#queue.length;
    for (const host of this.#set.tracked()) n += host.inFlight;
    return n;
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || this.pending > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when nothing is queued or in flight, or when `signal` aborts. */
  async idle(signal?: AbortSignal): Promise<void> {
    if (this.pending === 0 || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      this.#idleWaiters.push(resolve);
      signal?.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** The dispatcher's and its set's state for `proxy.stats`. */
  stats(): DispatchStats {
    const { totals: setTotals, ...rest } = this.#set.stats();
    return {
      mode: this.mode,
      ...rest,
      queue: { length: this.#queue.length, capacity: this.#queue.capacity },
      totals: { ...this.#totals, ...setTotals },
    };
  }

  /**
   * Stops: waiting calls are answered `SHUTTING_DOWN`, hosts are stopped
   * (after `graceMs` by force). Idempotent.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing = true;
    if (this.#housekeeping !== undefined) clearInterval(this.#housekeeping);
    this.#housekeeping = undefined;
    for (const call of this.#queue.remove(() => true)) this.#fail(call, shuttingDown());
    await this.#set.close(options.graceMs ?? 5_000);
    this.#checkIdle();
  }
}
