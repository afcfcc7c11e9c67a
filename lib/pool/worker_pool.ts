/**
 * A supervised pool of worker processes. It spreads requests over them one
 * request at a time, queues what no worker can take, and keeps the workers
 * healthy: it replaces the dead (with backoff, and a stop when they crash
 * while starting again and again), answers requests past their deadline and
 * kills workers stuck on one, retires workers after N requests or above a
 * memory limit, and restarts them one by one without failing a request.
 *
 * Four modes: `static` (N workers), `dynamic` (between a minimum and a
 * maximum, keeping spare workers ahead of demand), `ondemand` (none until a
 * request comes, idle ones stop) and `dedicated` (one worker per routing key).
 *
 * @module
 */

import { pickLeastInFlight } from "../balancer/least_in_flight.ts";
import { getLogger } from "../log.ts";
import { ErrorCode, type ProxyError, type WireError } from "../protocol/mod.ts";
import type { Call, Requester } from "./call.ts";
import { type QueuedRequest, RequestQueue } from "./request_queue.ts";
import { Worker } from "./worker.ts";
import type { ExitStatus } from "./worker_process.ts";
import { readRssMb } from "./memory.ts";
import { formatDigest, paramsDigest } from "./params_digest.ts";
import {
  type ExitRecord,
  POOL_MODES,
  type PoolMode,
  type PoolStats,
  type WorkerPoolOptions,
  type WorkerStats,
} from "./pool_options.ts";

interface Slot {
  id: number;
  key: string | undefined;
  worker: Worker | null; // the current one: starting or ready
  next: Worker | null; // a replacement getting ready (recycling, reload)
  retiring: Set<Worker>; // old ones finishing their work
  restarts: number;
  failedStarts: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  crashLoopUntil: number;
  lastError: ProxyError | null;
  waiting: QueuedRequest[]; // dedicated mode: requests for this key
}

const MAX_BACKOFF_MS = 5_000;
const PAST_EXITS_KEPT = 20;
const HOUSEKEEPING_MS = 50;

/**
 * The pool. Call {@linkcode WorkerPool.start} once, then
 * {@linkcode WorkerPool.submit} per request.
 */
export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly mode: PoolMode;
  readonly #maxInFlight: number;
  readonly #queueTimeout: number;
  readonly #queue: RequestQueue;
  readonly #slots = new Set<Slot>();
  readonly #byKey = new Map<string, Slot>();
  readonly #slotById = new Map<number, Slot>();
  #ready: Worker[] = [];
  #nextSlotId = 1;
  #closing = false;
  #queueTimer: ReturnType<typeof setTimeout> | undefined;
  #housekeeping: ReturnType<typeof setInterval> | undefined;
  #nextMemoryCheck = 0;
  #clock = performance.now();
  #idleWaiters: (() => void)[] = [];
  #waitingCount = 0; // dedicated: requests waiting in slots
  #reloading: Promise<{ replaced: number; failed: number }> | null = null;
  readonly #retryAll: boolean;
  readonly #retry: Set<string>;
  readonly #deadlines: boolean;
  readonly #requestTimeout: number;
  readonly #killAfter: number;
  readonly #methodTimeouts: Map<string, number>;
  readonly #random: () => number;
  readonly #pastExits: ExitRecord[] = [];
  readonly #log = getLogger(["pool"]);
  readonly #workerLog = getLogger(["worker"]);
  readonly #slowLog = getLogger(["slow"]);
  #totals = {
    requests: 0,
    answered: 0,
    spawns: 0,
    crashes: 0,
    worker_exits: 0,
    timeouts: 0,
    kills: 0,
    retries: 0,
    recycles: 0,
    queue_full: 0,
    queue_timeouts: 0,
    notifications_dropped: 0,
  };

  /** @param options Mode, size, limits and how to start a worker. */
  constructor(options: WorkerPoolOptions) {
    this.#o = options;
    this.mode = options.mode ?? "static";
    if (!POOL_MODES.includes(this.mode)) {
      throw new RangeError(`Cannot create pool: unknown mode "${this.mode}"`);
    }
    const cpus = navigator.hardwareConcurrency || 1;
    checkInt("workers", options.workers ?? cpus, 1);
    checkInt("maxWorkers", this.#maxWorkers, 1);
    checkInt("minWorkers", options.minWorkers ?? 1, 0);
    if ((options.minWorkers ?? 1) > this.#maxWorkers && this.mode === "dynamic") {
      throw new RangeError(`Cannot create pool: minWorkers is above maxWorkers`);
    }
    if ((options.minSpare ?? 1) > (options.maxSpare ?? 3)) {
      throw new RangeError(`Cannot create pool: minSpare is above maxSpare`);
    }
    this.#maxInFlight = checkInt("maxInFlightPerWorker", options.maxInFlightPerWorker ?? 128, 1);
    this.#queueTimeout = checkInt("queueTimeout", options.queueTimeout ?? 10_000, 1);
    this.#queue = new RequestQueue(options.queueSize ?? 1024);
    this.#retryAll = options.retry === "all";
    this.#retry = new Set(options.retry === "all" ? [] : options.retry ?? []);
    this.#requestTimeout = checkInt("requestTimeout", options.requestTimeout ?? 30_000, 0);
    this.#killAfter = checkInt("killAfter", options.killAfter ?? 60_000, 0);
    this.#methodTimeouts = new Map(Object.entries(options.methodTimeouts ?? {}));
    this.#deadlines = this.#requestTimeout > 0 || this.#killAfter > 0 ||
      this.#methodTimeouts.size > 0;
    this.#random = options.random ?? Math.random;
  }

  get #maxWorkers(): number {
    const cpus = navigator.hardwareConcurrency || 1;
    return this.#o.maxWorkers ?? (this.mode === "dedicated" ? 64 : 2 * cpus);
  }

  /** Workers in `static` mode; the most workers otherwise. */
  get size(): number {
    return this.mode === "static"
      ? this.#o.workers ?? (navigator.hardwareConcurrency || 1)
      : this.#maxWorkers;
  }

  /**
   * Starts the workers the mode wants up front and waits until they are ready
   * (`static`: all; `dynamic`: the minimum; `ondemand`, `dedicated`: none).
   *
   * @throws {ProxyError} `NO_WORKERS` when one cannot start; the others are stopped.
   */
  async start(): Promise<void> {
    const initial = this.mode === "static"
      ? this.size
      : this.mode === "dynamic"
      ? Math.max(this.#o.minWorkers ?? 1, this.#o.minSpare ?? 1)
      : 0;
    const slots = Array.from(
      { length: Math.min(initial, this.#maxWorkers) },
      () => this.#newSlot(undefined),
    );
    const results = await Promise.all(slots.map((s) => this.#startWorker(s, false)));
    const failed = slots.find((_s, i) => !results[i]);
    if (failed) {
      const err = failed.lastError!;
      await this.close({ graceMs: 0 });
      throw err;
    }
    // Deadlines, idle stops, memory readings and the waiting requests of
    // dedicated workers are all checked on one timer.
    this.#housekeeping = setInterval(() => this.#housekeep(), HOUSEKEEPING_MS);
  }

  #newSlot(key: string | undefined): Slot {
    const slot: Slot = {
      id: this.#nextSlotId++,
      key,
      worker: null,
      next: null,
      retiring: new Set(),
      restarts: 0,
      failedStarts: 0,
      timer: undefined,
      crashLoopUntil: 0,
      lastError: null,
      waiting: [],
    };
    this.#slots.add(slot);
    this.#slotById.set(slot.id, slot);
    if (key !== undefined) this.#byKey.set(key, slot);
    return slot;
  }

  #removeSlot(slot: Slot): void {
    this.#slots.delete(slot);
    this.#slotById.delete(slot.id);
    if (slot.key !== undefined && this.#byKey.get(slot.key) === slot) this.#byKey.delete(slot.key);
    if (slot.timer !== undefined) clearTimeout(slot.timer);
  }

  // Starts a worker in `slot`: as its current worker, or (replacing) as the
  // one that takes over once ready. Resolves true once ready.
  #startWorker(slot: Slot, replacing: boolean): Promise<boolean> {
    this.#totals.spawns++;
    const socket = `${this.#o.socketDir}/w${slot.id}.${this.#totals.spawns}.sock`;
    const worker = new Worker({
      id: slot.id,
      socket,
      commandLine: this.#o.commandLine(socket),
      ...(this.#o.startTimeout === undefined ? {} : { startTimeout: this.#o.startTimeout }),
      ...(this.#o.maxMessageSize === undefined ? {} : { maxMessageSize: this.#o.maxMessageSize }),
      ...(this.#o.spawn ? { spawn: this.#o.spawn } : {}),
      ...(this.#o.connect ? { connect: this.#o.connect } : {}),
      onOutput: (w, line) => this.#workerLog.info(`worker ${w.id} (pid ${w.pid}): ${line}`),
      onAnswer: (w) => this.#onAnswer(slot, w),
      onDrain: (w) => this.#ready = this.#ready.filter((r) => r !== w),
      onExit: (w, status, orphans, error) => this.#onExit(slot, w, status, orphans, error),
    });
    worker.key = slot.key;
    const maxRequests = this.#o.maxRequests ?? 0;
    if (maxRequests > 0) {
      worker.retireAfter = maxRequests +
        Math.floor(this.#random() * ((this.#o.maxRequestsJitter ?? 0) + 1));
    }
    if (replacing) slot.next = worker;
    else slot.worker = worker;
    return worker.start().then(() => {
      slot.failedStarts = 0;
      slot.crashLoopUntil = 0;
      if (this.#closing) {
        worker.shutdown();
        return true;
      }
      if (replacing) {
        const old = slot.worker;
        slot.worker = worker;
        slot.next = null;
        if (old) this.#retireNow(slot, old);
      }
      if (this.mode !== "dedicated") this.#ready.push(worker);
      this.#dispatch(slot);
      return true;
    }, (err: ProxyError) => {
      if (replacing) slot.next = null;
      else slot.worker = null;
      slot.lastError = err;
      if (this.#closing) return false;
      slot.failedStarts++;
      this.#log.error(err.message);
      if (!replacing) this.#afterFailedStart(slot);
      return false;
    });
  }

  // A worker died before it got ready: back off, or stop for a while.
  #afterFailedStart(slot: Slot): void {
    if (!this.#started()) return; // start() reports it
    const threshold = this.#o.crashLoopThreshold ?? 5;
    let delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** (slot.failedStarts - 1));
    if (slot.failedStarts >= threshold) {
      const cooldown = this.#o.crashLoopCooldown ?? 30_000;
      slot.crashLoopUntil = performance.now() + cooldown;
      slot.failedStarts = threshold - 1; // one more failure after the rest re-enters the loop
      delay = cooldown;
      this.#log.fatal(
        `Worker ${slot.id}${
          slot.key === undefined ? "" : ` (key ${slot.key})`
        } is crash-looping: ${threshold} failed starts in a row; ` +
          `not respawning for ${cooldown} ms. Requests get NO_WORKERS meanwhile. Last error: ${slot.lastError?.message}`,
      );
      this.#failStranded(slot);
    }
    // A dedicated key with nothing waiting gives its place back; in a crash
    // loop it keeps the slot (so its requests fail fast) until the rest ends.
    if (this.mode === "dedicated" && slot.waiting.length === 0 && slot.crashLoopUntil === 0) {
      this.#removeSlot(slot);
      return;
    }
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#closing || !this.#slots.has(slot)) return;
      if (this.mode === "dedicated" && slot.waiting.length === 0) this.#removeSlot(slot);
      else void this.#startWorker(slot, false);
    }, delay);
  }

  #started(): boolean {
    return this.#housekeeping !== undefined;
  }

  // Requests that no worker can take any more get NO_WORKERS.
  #failStranded(slot: Slot): void {
    const error = this.#noWorkers(slot);
    for (const item of slot.waiting.splice(0)) {
      this.#waitingCount--;
      if (!item.requester.closed) item.requester.fail(item.msgid, error);
    }
    if (this.mode !== "dedicated" && !this.#anyLive()) {
      for (const item of this.#queue.remove(() => true)) {
        if (item.msgid >= 0 && !item.requester.closed) item.requester.fail(item.msgid, error);
      }
    }
    this.#checkIdle();
  }

  #noWorkers(slot: Slot | undefined): WireError {
    const err = slot?.lastError;
    return {
      code: ErrorCode.NO_WORKERS,
      message: `Cannot forward request: no worker available${
        err ? ` (${err.message.split("\n")[0]})` : ""
      }`,
      data: { stderr: (err?.data as { stderr?: string[] } | undefined)?.stderr ?? [] },
    };
  }

  // True when some worker is ready or starting, or may be started.
  #anyLive(): boolean {
    if (this.#ready.length > 0) return true;
    const now = performance.now();
    for (const slot of this.#slots) {
      if (slot.worker || slot.next || slot.crashLoopUntil <= now) return true;
    }
    return this.mode !== "static" && this.#slots.size < this.#maxWorkers;
  }

  /**
   * Forwards a request to the least busy worker, or queues it. The frame is
   * only read during the call (copied when kept).
   *
   * @param requester Who gets the answer.
   * @param msgid The requester's msgid.
   * @param method The method (for reports).
   * @param frame The whole request frame.
   * @param tail Offset after the msgid in `frame`.
   * @param key Routing key: in `dedicated` mode, requests with the same key go to the same worker.
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
    if (this.mode === "dedicated") {
      this.#submitKeyed(requester, msgid, method, frame, tail, key, false, false);
      return;
    }
    const i = this.#queue.length === 0
      ? pickLeastInFlight(this.#ready, this.#maxInFlight, this.#random)
      : -1;
    if (i >= 0) {
      this.#send(this.#ready[i]!, requester, msgid, method, frame, tail, undefined, false, false);
    } else if (!this.#anyLive()) requester.fail(msgid, this.#noWorkers(this.#lastFailedSlot()));
    else this.#enqueue(requester, msgid, method, frame, tail, false, false);
    if (this.mode === "dynamic" || i < 0) this.#scale();
  }

  #lastFailedSlot(): Slot | undefined {
    let found: Slot | undefined;
    for (const slot of this.#slots) if (slot.lastError) found = slot;
    return found;
  }

  #submitKeyed(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
    key: string | undefined,
    owned: boolean,
    retried: boolean,
  ): void {
    if (key === undefined) {
      requester.fail(msgid, {
        code: ErrorCode.NO_ROUTE_KEY,
        message: `Cannot route ${method}: the request has no routing key`,
      });
      return;
    }
    let slot = this.#byKey.get(key);
    if (!slot) {
      if (this.#slots.size >= this.#maxWorkers) {
        requester.fail(msgid, {
          code: ErrorCode.WORKER_LIMIT,
          message: `Cannot start a worker for key ${
            JSON.stringify(key)
          }: ${this.#maxWorkers} dedicated workers already run`,
          data: { max_workers: this.#maxWorkers },
        });
        return;
      }
      slot = this.#newSlot(key);
    }
    if (slot.crashLoopUntil > performance.now()) {
      requester.fail(msgid, this.#noWorkers(slot));
      return;
    }
    const w = slot.worker;
    if (w && w.state === "ready" && slot.waiting.length === 0 && w.inFlight < this.#maxInFlight) {
      this.#send(w, requester, msgid, method, frame, tail, key, owned, retried);
      return;
    }
    if (this.#waitingCount + this.#queue.length >= this.#queue.capacity) {
      this.#queueFull(requester, msgid, method);
      return;
    }
    slot.waiting.push({
      requester,
      msgid,
      method,
      frame: owned ? frame : frame.slice(),
      tail,
      deadline: performance.now() + this.#queueTimeout,
      retried,
    });
    this.#waitingCount++;
    // Two requests for a new key at once start one worker: the slot holds it.
    if (!slot.worker && slot.timer === undefined) void this.#startWorker(slot, false);
  }

  #send(
    worker: Worker,
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
    key: string | undefined,
    owned: boolean,
    retried: boolean,
  ): void {
    const call: Call = { requester, msgid, method };
    if (!retried && (this.#retryAll || (this.#retry.size > 0 && this.#retry.has(method)))) {
      call.frame = owned ? frame : frame.slice();
      call.tail = tail;
      call.key = key;
    }
    if (retried) call.retried = true;
    if (this.#deadlines) {
      // The housekeeping clock (50 ms steps) spares a clock read per request.
      const now = this.#clock;
      const timeout = this.#methodTimeouts.size === 0
        ? this.#requestTimeout
        : this.#methodTimeouts.get(method) ?? this.#requestTimeout;
      call.startedAt = now;
      const limit = timeout > 0 ? timeout : this.#killAfter;
      if (limit > 0) call.deadline = now + limit;
      call.digest = paramsDigest(frame, tail, method);
    }
    worker.send(call, frame, tail);
    // Counted when sent, so a worker takes exactly max-requests requests.
    if (++worker.assigned >= worker.retireAfter) {
      this.#retire(this.#slotById.get(worker.id)!, worker, "max-requests");
    }
  }

  /**
   * Forwards a notification to one worker (queued if none can take it). In
   * `dedicated` mode it goes to its key's worker if that one is ready, and is
   * dropped otherwise (a notification has no answer to wait for); one is also
   * dropped when the chosen worker is not reading. Drops are counted in
   * `totals.notifications_dropped`.
   */
  notify(requester: Requester, method: string, frame: Uint8Array, key?: string): void {
    if (this.#closing) return;
    if (this.mode === "dedicated") {
      const w = key === undefined ? undefined : this.#byKey.get(key)?.worker;
      if (!(w && w.state === "ready" && w.notify(frame))) this.#totals.notifications_dropped++;
      return;
    }
    const i = this.#queue.length === 0
      ? pickLeastInFlight(this.#ready, this.#maxInFlight, this.#random)
      : -1;
    if (i >= 0) {
      if (!this.#ready[i]!.notify(frame)) this.#totals.notifications_dropped++;
    } else this.#enqueue(requester, -1, method, frame, 0, false, false);
  }

  #enqueue(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
    owned: boolean,
    retried: boolean,
  ): void {
    const ok = this.#waitingCount + this.#queue.length < this.#queue.capacity && this.#queue.push({
      requester,
      msgid,
      method,
      frame: owned ? frame : frame.slice(),
      tail,
      deadline: performance.now() + this.#queueTimeout,
      retried,
    });
    if (!ok) {
      this.#queueFull(requester, msgid, method);
      return;
    }
    if (this.#queueTimer === undefined) this.#armQueueTimer();
  }

  #queueFull(requester: Requester, msgid: number, method: string): void {
    this.#totals.queue_full++;
    if (msgid >= 0) {
      requester.fail(msgid, {
        code: ErrorCode.QUEUE_FULL,
        message:
          `Cannot queue ${method}: all workers busy and ${this.#queue.capacity} requests already waiting`,
      });
    }
  }

  #armQueueTimer(): void {
    const head = this.#queue.peek();
    if (!head) return;
    this.#queueTimer = setTimeout(() => {
      this.#queueTimer = undefined;
      const now = performance.now();
      let item;
      while ((item = this.#queue.peek()) && item.deadline <= now) {
        this.#queue.shift();
        this.#queueTimedOut(item);
      }
      this.#armQueueTimer();
      this.#checkIdle();
    }, Math.max(0, head.deadline - performance.now()));
  }

  #queueTimedOut(item: QueuedRequest): void {
    this.#totals.queue_timeouts++;
    if (item.msgid >= 0 && !item.requester.closed) {
      item.requester.fail(item.msgid, {
        code: ErrorCode.QUEUE_TIMEOUT,
        message: `Cannot forward ${item.method}: no worker free within ${this.#queueTimeout} ms`,
      });
    }
  }

  // Hands waiting requests to workers that can take them.
  #dispatch(slot: Slot | undefined): void {
    if (this.mode === "dedicated") {
      if (slot) this.#dispatchKeyed(slot);
      this.#checkIdle();
      return;
    }
    while (this.#queue.length > 0) {
      const i = pickLeastInFlight(this.#ready, this.#maxInFlight, this.#random);
      if (i < 0) return;
      const item = this.#queue.shift()!;
      if (item.requester.closed) continue;
      const worker = this.#ready[i]!;
      if (item.msgid < 0) {
        if (!worker.notify(item.frame)) this.#totals.notifications_dropped++;
      } else {
        this.#send(
          worker,
          item.requester,
          item.msgid,
          item.method,
          item.frame,
          item.tail,
          undefined,
          true,
          item.retried === true,
        );
      }
    }
    if (this.#queueTimer !== undefined) {
      clearTimeout(this.#queueTimer);
      this.#queueTimer = undefined;
    }
    this.#checkIdle();
  }

  #dispatchKeyed(slot: Slot): void {
    const w = slot.worker;
    if (!w || w.state !== "ready") return;
    while (slot.waiting.length > 0 && w.inFlight < this.#maxInFlight) {
      const item = slot.waiting.shift()!;
      this.#waitingCount--;
      if (item.requester.closed) continue;
      this.#send(
        w,
        item.requester,
        item.msgid,
        item.method,
        item.frame,
        item.tail,
        slot.key,
        true,
        item.retried === true,
      );
    }
  }

  #onAnswer(slot: Slot, worker: Worker): void {
    this.#totals.answered++;
    if (worker.state === "draining" && worker.inFlight === 0) worker.shutdown();
    else if (worker.served >= worker.retireAfter && slot.worker === worker) {
      this.#retire(slot, worker, "max-requests");
    }
    if (this.#queue.length > 0 || slot.waiting.length > 0) this.#dispatch(slot);
    else if (this.#idleWaiters.length > 0) this.#checkIdle();
  }

  #onExit(slot: Slot, worker: Worker, status: ExitStatus, orphans: Call[], error: WireError): void {
    this.#ready = this.#ready.filter((w) => w !== worker);
    this.#totals.worker_exits++;
    const crashed = !worker.shutdownRequested;
    if (crashed && worker.becameReady) this.#totals.crashes++;
    const reason = worker.killReason ??
      (worker.shutdownRequested
        ? "stopped"
        : worker.becameReady
        ? "crashed"
        : "died while starting");
    this.#pastExits.push({
      id: slot.id,
      key: slot.key ?? null,
      pid: worker.pid,
      code: status.code,
      signal: status.signal,
      reason,
      at: new Date().toISOString(),
    });
    if (this.#pastExits.length > PAST_EXITS_KEPT) this.#pastExits.shift();
    const wasCurrent = slot.worker === worker;
    slot.retiring.delete(worker);
    if (wasCurrent) slot.worker = null;
    if (crashed && worker.becameReady && !this.#closing) {
      const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
      this.#log.warn(
        `Worker ${worker.id} (pid ${worker.pid}) exited with ${how}${
          worker.killReason ? ` (${worker.killReason})` : ""
        }; replacing it`,
      );
    }
    // Requests it never answered: idempotent ones go once more elsewhere.
    for (const call of orphans) {
      if (call.requester.closed) continue;
      if (call.frame && !call.retried && !this.#closing) {
        this.#totals.retries++;
        this.#resubmit(call);
      } else call.requester.fail(call.msgid, error);
    }
    if (this.#closing) {
      this.#checkIdle();
      return;
    }
    if (wasCurrent && worker.becameReady && !slot.next) {
      if (crashed) slot.restarts++;
      if (
        slot.waiting.length > 0 || this.mode === "static" || (crashed && this.mode !== "dedicated")
      ) {
        // Requests wait for this key (some may have come while it stopped),
        // or the mode keeps its number of workers: start a new one.
        void this.#startWorker(slot, false);
      } else {
        // Stopped for being idle, or a dedicated worker that crashed with
        // nothing waiting: its key gets a new worker on its next request.
        this.#removeSlot(slot);
      }
    }
    this.#scale();
    this.#checkIdle();
  }

  #resubmit(call: Call): void {
    const frame = call.frame!;
    const tail = call.tail!;
    if (this.mode === "dedicated") {
      this.#submitKeyed(call.requester, call.msgid, call.method, frame, tail, call.key, true, true);
      return;
    }
    const i = this.#queue.length === 0
      ? pickLeastInFlight(this.#ready, this.#maxInFlight, this.#random)
      : -1;
    if (i >= 0) {
      this.#send(
        this.#ready[i]!,
        call.requester,
        call.msgid,
        call.method,
        frame,
        tail,
        undefined,
        true,
        true,
      );
    } else this.#enqueue(call.requester, call.msgid, call.method, frame, tail, true, true);
  }

  // Retirement (max-requests, max-memory): the worker takes no new work at
  // once, finishes what it has and stops; a replacement starts meanwhile
  // (other workers, or the queue, take the requests in between).
  #retire(slot: Slot, worker: Worker, why: string): void {
    if (slot.worker !== worker || worker.state !== "ready" || slot.next || this.#closing) return;
    this.#totals.recycles++;
    this.#log.info(`Retiring worker ${slot.id} (pid ${worker.pid}): ${why}`);
    slot.worker = null;
    this.#retireNow(slot, worker);
    void this.#startWorker(slot, false);
  }

  #retireNow(slot: Slot, old: Worker): void {
    slot.retiring.add(old);
    old.drain();
    if (old.inFlight === 0) old.shutdown();
  }

  // dynamic and ondemand: start workers ahead of demand.
  #scale(): void {
    if (this.#closing || this.mode === "static" || this.mode === "dedicated" || !this.#started()) {
      return;
    }
    let idle = 0;
    let starting = 0;
    for (const slot of this.#slots) {
      const w = slot.worker;
      if (!w) continue;
      if (w.state === "starting") starting++;
      else if (w.state === "ready" && w.inFlight === 0) idle++;
    }
    let want = this.#queue.length > 0
      ? Math.ceil(this.#queue.length / this.#maxInFlight) - starting
      : 0;
    if (this.mode === "dynamic") want = Math.max(want, (this.#o.minSpare ?? 1) - idle - starting);
    want = Math.min(want, this.#maxWorkers - this.#slots.size);
    for (let i = 0; i < want; i++) void this.#startWorker(this.#newSlot(undefined), false);
  }

  #housekeep(): void {
    if (this.#closing) return;
    const now = this.#clock = performance.now();
    if (this.#deadlines) this.#sweepDeadlines(now);
    if (this.mode !== "static") this.#stopIdle(now);
    if (this.mode === "dedicated" && this.#waitingCount > 0) {
      for (const slot of this.#slots) {
        while (slot.waiting.length > 0 && slot.waiting[0]!.deadline <= now) {
          this.#waitingCount--;
          this.#queueTimedOut(slot.waiting.shift()!);
        }
      }
      this.#checkIdle();
    }
    if ((this.#o.maxMemoryMb ?? 0) > 0 && now >= this.#nextMemoryCheck) {
      this.#nextMemoryCheck = now + (this.#o.memoryCheckInterval ?? 2000);
      void this.#checkMemory();
    }
  }

  #sweepDeadlines(now: number): void {
    const onTimeout = (call: Call) => {
      this.#totals.timeouts++;
      if (!call.requester.closed) {
        call.requester.fail(call.msgid, {
          code: ErrorCode.TIMEOUT,
          message: `Cannot answer ${call.method}: no answer within ${
            Math.round(call.deadline! - call.startedAt!)
          } ms`,
        });
      }
    };
    for (const slot of this.#slots) {
      for (const worker of [slot.worker, ...slot.retiring]) {
        if (!worker || worker.state === "exited" || worker.state === "starting") continue;
        const oldest = worker.sweep(now, onTimeout);
        if (!oldest || this.#killAfter === 0) continue;
        const elapsed = now - oldest.startedAt!;
        const limit = Math.max(this.#killAfter, oldest.deadline! - oldest.startedAt!);
        if (elapsed > limit) {
          this.#totals.kills++;
          const lines = worker.lastLines();
          this.#slowLog.warn(
            `Slow request: worker ${worker.id} (pid ${worker.pid}) killed after ${
              Math.round(elapsed)
            } ms on ` +
              `method=${oldest.method} params_digest=${formatDigest(oldest.digest!)} elapsed_ms=${
                Math.round(elapsed)
              }; ` +
              `last output: ${lines.length > 0 ? lines.slice(-5).join(" | ") : "(none)"}`,
          );
          worker.kill(`stuck on ${oldest.method} for ${Math.round(elapsed)} ms`);
        }
      }
    }
  }

  #stopIdle(now: number): void {
    const timeout = this.#o.idleTimeout ?? 10_000;
    let idle = 0;
    if (this.mode === "dynamic") {
      for (const slot of this.#slots) {
        if (slot.worker?.state === "ready" && slot.worker.inFlight === 0) idle++;
      }
    }
    for (const slot of this.#slots) {
      const w = slot.worker;
      if (!w || w.state !== "ready" || w.inFlight > 0 || slot.waiting.length > 0 || slot.next) {
        continue;
      }
      if (now - w.idleSince < timeout) continue;
      if (this.mode === "dynamic") {
        if (this.#slots.size <= (this.#o.minWorkers ?? 1) || idle <= (this.#o.maxSpare ?? 3)) {
          continue;
        }
        idle--;
      }
      this.#log.info(
        `Stopping worker ${slot.id} (pid ${w.pid}): idle for ${Math.round(now - w.idleSince)} ms`,
      );
      w.shutdown(); // its exit removes the slot
    }
  }

  /** Reads the workers' resident memory now (for `proxy.stats`; also the `--max-memory` check). */
  async readMemory(): Promise<void> {
    await this.#checkMemory();
  }

  async #checkMemory(): Promise<void> {
    const max = this.#o.maxMemoryMb ?? 0;
    const live: [Slot, Worker][] = [];
    for (const slot of this.#slots) {
      const w = slot.worker;
      if (w?.state === "ready" && w.pid !== null) live.push([slot, w]);
    }
    if (live.length === 0) return;
    const rss = await readRssMb(live.map(([, w]) => w.pid!));
    // Workers may have changed while ps ran: judge each by its own pid.
    for (const [slot, w] of live) {
      const mb = rss.get(w.pid!);
      if (mb === undefined || w.state !== "ready") continue;
      w.rssMb = mb;
      if (max > 0 && mb > max) this.#retire(slot, w, `resident memory ${mb} MiB above ${max} MiB`);
    }
  }

  /**
   * Replaces every worker, one at a time: each new worker is ready before the
   * old one stops taking work, and the old one finishes what it has, so no
   * request fails. Concurrent calls share one run.
   *
   * @returns How many workers were replaced and how many replacements failed to start.
   */
  reload(): Promise<{ replaced: number; failed: number }> {
    this.#reloading ??= (async () => {
      let replaced = 0;
      let failed = 0;
      try {
        for (const slot of [...this.#slots]) {
          if (this.#closing) break;
          const w = slot.worker;
          if (!w || w.state !== "ready" || slot.next) continue;
          this.#totals.recycles++;
          if (await this.#startWorker(slot, true)) replaced++;
          else failed++;
        }
      } finally {
        this.#reloading = null;
      }
      this.#log.info(`Reload done: ${replaced} workers replaced, ${failed} failed to start`);
      return { replaced, failed };
    })();
    return this.#reloading;
  }

  /** Drops the queued requests of a requester that went away and frees its places at workers. */
  forget(requester: Requester): void {
    if (this.#queue.length > 0) this.#queue.remove((item) => item.requester === requester);
    for (const slot of this.#slots) {
      if (slot.waiting.length > 0) {
        const before = slot.waiting.length;
        slot.waiting = slot.waiting.filter((item) => item.requester !== requester);
        this.#waitingCount -= before - slot.waiting.length;
      }
      for (const w of [slot.worker, ...slot.retiring]) {
        if (!w || w.inFlight === 0) continue;
        w.cancelFor(requester);
        if (w.state === "draining" && w.inFlight === 0 && slot.retiring.has(w)) w.shutdown();
      }
    }
    if (this.#queue.length > 0) this.#dispatch(undefined);
    else if (this.mode === "dedicated") {
      for (const slot of this.#slots) {
        this.#dispatchKeyed(slot);
      }
    }
    this.#checkIdle();
  }

  /** Requests in flight at workers plus those waiting. */
  get pending(): number {
    let n = this.#queue.length + this.#waitingCount;
    for (const slot of this.#slots) {
      n += slot.worker?.inFlight ?? 0;
      for (const w of slot.retiring) n += w.inFlight;
    }
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

  /** The pool's state for `proxy.stats`. */
  stats(): PoolStats {
    const workers: WorkerStats[] = [];
    for (const slot of this.#slots) {
      for (const w of [slot.worker, slot.next, ...slot.retiring]) {
        if (!w) continue;
        workers.push({
          id: slot.id,
          mode: this.mode,
          key: slot.key ?? null,
          pid: w.pid,
          state: w.state,
          in_flight: w.inFlight,
          served: w.served,
          restarts: slot.restarts,
          rss_mb: w.rssMb,
          started_at: new Date(w.startedAt).toISOString(),
        });
      }
      if (!slot.worker && !slot.next) {
        workers.push({
          id: slot.id,
          mode: this.mode,
          key: slot.key ?? null,
          pid: null,
          state: slot.crashLoopUntil > performance.now() ? "crash-loop" : "restarting",
          in_flight: 0,
          served: 0,
          restarts: slot.restarts,
          rss_mb: null,
          started_at: "",
        });
      }
    }
    return {
      mode: this.mode,
      socket_dir: this.#o.socketDir,
      workers,
      past_exits: [...this.#pastExits],
      queue: { length: this.#queue.length + this.#waitingCount, capacity: this.#queue.capacity },
      totals: { ...this.#totals },
    };
  }

  /** The current workers, for tests and tooling. */
  get workers(): readonly Worker[] {
    const out: Worker[] = [];
    for (const slot of this.#slots) if (slot.worker) out.push(slot.worker);
    return out;
  }

  /**
   * Stops the pool: waiting requests are answered `SHUTTING_DOWN`, workers
   * are told to shut down and, after `graceMs`, killed. Idempotent.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing = true;
    if (this.#queueTimer !== undefined) clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
    if (this.#housekeeping !== undefined) clearInterval(this.#housekeeping);
    for (const item of this.#queue.remove(() => true)) {
      if (item.msgid >= 0 && !item.requester.closed) {
        item.requester.fail(item.msgid, shuttingDown());
      }
    }
    const all: Worker[] = [];
    for (const slot of this.#slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      for (const item of slot.waiting.splice(0)) {
        if (!item.requester.closed) item.requester.fail(item.msgid, shuttingDown());
      }
      for (const w of [slot.worker, slot.next, ...slot.retiring]) if (w) all.push(w);
    }
    this.#waitingCount = 0;
    for (const w of all) w.shutdown();
    const exits = Promise.all(all.map((w) => w.exited));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      exits.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), options.graceMs ?? 5_000)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const w of all) w.kill("did not stop within the grace period");
      await exits;
    }
    this.#ready = [];
  }
}

function shuttingDown(): WireError {
  return {
    code: ErrorCode.SHUTTING_DOWN,
    message: "Cannot forward request: the proxy is shutting down",
  };
}

function checkInt(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot create pool: ${name} must be an integer of at least ${min}, got ${value}`,
    );
  }
  return value;
}
