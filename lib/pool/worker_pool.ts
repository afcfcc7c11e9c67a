/**
 * A fixed-size pool of worker processes that spreads requests over them one
 * request at a time, queues what no worker can take, and replaces workers
 * that die.
 *
 * @module
 */

import { pickLeastInFlight } from "../balancer/least_in_flight.ts";
import { getLogger } from "../log.ts";
import { ErrorCode, type ProxyError, type WireError } from "../protocol/mod.ts";
import type { Requester } from "./call.ts";
import { RequestQueue } from "./request_queue.ts";
import { Worker } from "./worker.ts";
import type { CommandLine } from "./worker_command.ts";
import type { ExitStatus, SpawnFn } from "./worker_process.ts";

/** Options of {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /** Number of workers. @default {navigator.hardwareConcurrency} */
  workers?: number;
  /** Directory for the worker sockets (private to the proxy). */
  socketDir: string;
  /** The command line of a worker, given its socket path. */
  commandLine: (socket: string) => CommandLine;
  /** Requests one worker may have in flight. @default {128} */
  maxInFlightPerWorker?: number;
  /** Requests that may wait for a worker. @default {1024} */
  queueSize?: number;
  /** Milliseconds a request may wait for a worker. @default {10000} */
  queueTimeout?: number;
  /** Milliseconds a worker may take to get ready. @default {10000} */
  startTimeout?: number;
  /** Largest message accepted from a worker. @default {8388608} */
  maxMessageSize?: number;
  /** Starts processes; tests inject fakes. @default {spawnWorkerProcess} */
  spawn?: SpawnFn;
  /** Connects to a worker socket; tests inject fakes. */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Randomness for the balancer. @default {Math.random} */
  random?: () => number;
}

/** One worker's line in {@linkcode PoolStats}. */
export interface WorkerStats {
  id: number;
  pid: number | null;
  state: string;
  in_flight: number;
  served: number;
  restarts: number;
  started_at: string;
}

/** What `proxy.stats` reports of the pool. */
export interface PoolStats {
  socket_dir: string;
  workers: WorkerStats[];
  queue: { length: number; capacity: number };
  totals: {
    requests: number;
    answered: number;
    worker_exits: number;
    spawns: number;
    queue_full: number;
    queue_timeouts: number;
  };
}

interface Slot {
  worker: Worker;
  restarts: number;
  generation: number;
  failedStarts: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const MAX_BACKOFF_MS = 5_000;

/**
 * The pool. Call {@linkcode WorkerPool.start} once, then
 * {@linkcode WorkerPool.submit} per request.
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #size: number;
  readonly #maxInFlight: number;
  readonly #queueTimeout: number;
  readonly #queue: RequestQueue;
  readonly #slots: Slot[] = [];
  #ready: Worker[] = [];
  #closing = false;
  #queueTimer: ReturnType<typeof setTimeout> | undefined;
  #idleWaiters: (() => void)[] = [];
  readonly #log = getLogger(["pool"]);
  readonly #workerLog = getLogger(["worker"]);
  #totals = {
    requests: 0,
    answered: 0,
    worker_exits: 0,
    spawns: 0,
    queue_full: 0,
    queue_timeouts: 0,
  };

  /** @param options Size, limits and how to start a worker. */
  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#size = positiveInt("workers", options.workers ?? navigator.hardwareConcurrency ?? 1);
    this.#maxInFlight = positiveInt("maxInFlightPerWorker", options.maxInFlightPerWorker ?? 128);
    this.#queueTimeout = positiveInt("queueTimeout", options.queueTimeout ?? 10_000);
    this.#queue = new RequestQueue(options.queueSize ?? 1024);
  }

  /** Number of worker slots. */
  get size(): number {
    return this.#size;
  }

  /**
   * Starts every worker and waits until all are ready.
   *
   * @throws {ProxyError} `NO_WORKERS` when one cannot start; the others are stopped.
   */
  async start(): Promise<void> {
    const slots: Slot[] = [];
    for (let id = 1; id <= this.#size; id++) {
      const slot: Slot = {
        worker: null!,
        restarts: 0,
        generation: 0,
        failedStarts: 0,
        timer: undefined,
      };
      slot.worker = this.#newWorker(id, slot);
      slots.push(slot);
    }
    this.#slots.push(...slots);
    const results = await Promise.allSettled(slots.map((s) => s.worker.start()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      await this.close({ graceMs: 0 });
      throw (failed as PromiseRejectedResult).reason;
    }
    for (const slot of slots) this.#onReady(slot.worker);
  }

  #newWorker(id: number, slot: Slot): Worker {
    slot.generation++;
    this.#totals.spawns++;
    const socket = `${this.#options.socketDir}/w${id}.${slot.generation}.sock`;
    return new Worker({
      id,
      socket,
      commandLine: this.#options.commandLine(socket),
      ...(this.#options.startTimeout === undefined
        ? {}
        : { startTimeout: this.#options.startTimeout }),
      ...(this.#options.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#options.maxMessageSize }),
      ...(this.#options.spawn ? { spawn: this.#options.spawn } : {}),
      ...(this.#options.connect ? { connect: this.#options.connect } : {}),
      onOutput: (w, line) => this.#workerLog.info(`worker ${w.id} (pid ${w.pid}): ${line}`),
      onAnswer: () => {
        this.#totals.answered++;
        if (this.#queue.length > 0) this.#dispatchQueue();
        else if (this.#idleWaiters.length > 0) this.#checkIdle();
      },
      onDrain: (w) => this.#ready = this.#ready.filter((r) => r !== w),
      onExit: (w, status) => this.#onWorkerExit(slot, w, status),
    });
  }

  #onReady(worker: Worker): void {
    if (worker.state !== "ready") return;
    this.#ready.push(worker);
    this.#dispatchQueue();
  }

  #onWorkerExit(slot: Slot, worker: Worker, status: ExitStatus): void {
    this.#ready = this.#ready.filter((w) => w !== worker);
    if (slot.worker !== worker) return; // an old generation
    this.#totals.worker_exits++;
    // One that never got ready is handled where its start() failed.
    if (this.#closing || !worker.becameReady) {
      this.#checkIdle();
      return;
    }
    const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
    this.#log.warn(
      `Worker ${worker.id} (pid ${worker.pid}) exited with ${how}${
        worker.killReason ? ` (${worker.killReason})` : ""
      }; replacing it`,
    );
    this.#replace(slot);
  }

  #replace(slot: Slot): void {
    slot.restarts++;
    const id = slot.worker.id;
    // A worker that dies while starting is retried with backoff, not in a storm.
    const delay = slot.failedStarts === 0
      ? 0
      : Math.min(MAX_BACKOFF_MS, 100 * 2 ** (slot.failedStarts - 1));
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#closing) return;
      const worker = this.#newWorker(id, slot);
      slot.worker = worker;
      worker.start().then(() => {
        slot.failedStarts = 0;
        this.#log.info(`Worker ${id} ready again (pid ${worker.pid})`);
        this.#onReady(worker);
      }, (err: ProxyError) => {
        if (this.#closing) return;
        slot.failedStarts++;
        this.#log.error(err.message);
        if (!this.#closing && slot.worker === worker) this.#replace(slot);
      });
    }, delay);
  }

  /**
   * Forwards a request to the least busy worker, or queues it. The frame is
   * only read during the call (copied if queued).
   *
   * @param requester Who gets the answer.
   * @param msgid The requester's msgid.
   * @param method The method (for reports).
   * @param frame The whole request frame.
   * @param tail Offset after the msgid in `frame`.
   */
  submit(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
  ): void {
    this.#totals.requests++;
    if (this.#closing) {
      requester.fail(msgid, shuttingDown());
      return;
    }
    const i = this.#queue.length === 0
      ? pickLeastInFlight(this.#ready, this.#maxInFlight, this.#options.random)
      : -1;
    if (i >= 0) {
      this.#ready[i]!.send({ requester, msgid, method }, frame, tail);
      return;
    }
    this.#enqueue(requester, msgid, method, frame, tail);
  }

  /** Forwards a notification to one worker (queued if none can take it). */
  notify(requester: Requester, method: string, frame: Uint8Array): void {
    if (this.#closing) return;
    const i = this.#queue.length === 0
      ? pickLeastInFlight(this.#ready, this.#maxInFlight, this.#options.random)
      : -1;
    if (i >= 0) this.#ready[i]!.notify(frame);
    else this.#enqueue(requester, -1, method, frame, 0);
  }

  #enqueue(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
  ): void {
    const ok = this.#queue.push({
      requester,
      msgid,
      method,
      frame: frame.slice(),
      tail,
      deadline: performance.now() + this.#queueTimeout,
    });
    if (!ok) {
      this.#totals.queue_full++;
      if (msgid >= 0) {
        requester.fail(msgid, {
          code: ErrorCode.QUEUE_FULL,
          message:
            `Cannot queue ${method}: all workers busy and ${this.#queue.capacity} requests already waiting`,
        });
      }
      return;
    }
    if (this.#queueTimer === undefined) this.#armQueueTimer();
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
        this.#totals.queue_timeouts++;
        if (item.msgid >= 0 && !item.requester.closed) {
          item.requester.fail(item.msgid, {
            code: ErrorCode.QUEUE_TIMEOUT,
            message:
              `Cannot forward ${item.method}: no worker free within ${this.#queueTimeout} ms`,
          });
        }
      }
      this.#armQueueTimer();
      this.#checkIdle();
    }, Math.max(0, head.deadline - performance.now()));
  }

  #dispatchQueue(): void {
    while (this.#queue.length > 0) {
      const i = pickLeastInFlight(this.#ready, this.#maxInFlight, this.#options.random);
      if (i < 0) return;
      const item = this.#queue.shift()!;
      if (item.requester.closed) continue;
      const worker = this.#ready[i]!;
      if (item.msgid < 0) worker.notify(item.frame);
      else {worker.send(
          { requester: item.requester, msgid: item.msgid, method: item.method },
          item.frame,
          item.tail,
        );}
    }
    if (this.#queueTimer !== undefined) {
      clearTimeout(this.#queueTimer);
      this.#queueTimer = undefined;
    }
    this.#checkIdle();
  }

  /** Drops the queued requests of a requester that went away. */
  forget(requester: Requester): void {
    if (this.#queue.length > 0) this.#queue.remove((item) => item.requester === requester);
  }

  /** Requests in flight at workers plus those queued. */
  get pending(): number {
    let n = this.#queue.length;
    for (const slot of this.#slots) n += slot.worker.inFlight;
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
    return {
      socket_dir: this.#options.socketDir,
      workers: this.#slots.map((slot) => ({
        id: slot.worker.id,
        pid: slot.worker.pid,
        state: slot.worker.state,
        in_flight: slot.worker.inFlight,
        served: slot.worker.served,
        restarts: slot.restarts,
        started_at: new Date(slot.worker.startedAt).toISOString(),
      })),
      queue: { length: this.#queue.length, capacity: this.#queue.capacity },
      totals: { ...this.#totals },
    };
  }

  /** The workers, for tests and tooling. */
  get workers(): readonly Worker[] {
    return this.#slots.map((s) => s.worker);
  }

  /**
   * Stops the pool: queued requests are answered `SHUTTING_DOWN`, workers are
   * told to shut down and, after `graceMs`, killed. Idempotent.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing = true;
    if (this.#queueTimer !== undefined) clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
    for (const item of this.#queue.remove(() => true)) {
      if (item.msgid >= 0 && !item.requester.closed) {
        item.requester.fail(item.msgid, shuttingDown());
      }
    }
    for (const slot of this.#slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.worker.shutdown();
    }
    const exits = Promise.all(this.#slots.map((s) => s.worker.exited));
    const grace = options.graceMs ?? 5_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      exits.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), grace)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const slot of this.#slots) slot.worker.kill("did not stop within the grace period");
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

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot create pool: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}
