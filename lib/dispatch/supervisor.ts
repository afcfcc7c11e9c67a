/**
 * The supervisor: the endpoint set of local worker processes. It owns their
 * membership: it spawns them and replaces the dead (with backoff, and a stop
 * when one exits again and again), scales them (`static`, `dynamic`,
 * `ondemand`), gives each routing key a worker of its own (`dedicated`),
 * retires workers after N requests or above a memory limit, and restarts
 * them one by one without failing a request. Queueing, deadlines and
 * retries are the dispatcher's.
 *
 * @module
 */

import { ErrorCode, type ErrorFormat, ProxyError, type WireError } from "../protocol/mod.ts";
import { getLogger } from "../log.ts";
import { readRssMb } from "../process/memory.ts";
import type { CommandLine } from "../process/self_command.ts";
import type { ExitStatus, SpawnFn } from "../process/spawn.ts";
import { backoffDelay } from "./backoff.ts";
import type { Call } from "./call.ts";
import { CrashLoopGuard } from "./crash_loop.ts";
import type { EndpointSet, Placement, SetEvents, TrackedHost } from "./endpoint_set.ts";
import type { Host } from "./host.ts";
import type { ExitRecord, SetStats, WorkerStats } from "./stats.ts";
import { type ReadyCheck, Worker } from "./worker.ts";
import { WorkerOutput } from "./worker_output.ts";

/** How the supervisor sizes the pool. */
export type PoolMode = "static" | "dynamic" | "ondemand" | "dedicated";

/** The pool modes, for flag validation. */
export const POOL_MODES: readonly PoolMode[] = ["static", "dynamic", "ondemand", "dedicated"];

/** Options of {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** How the pool sizes itself. */
  mode: PoolMode;
  /** `static`: number of workers. */
  workers: number;
  /** `dynamic`: workers kept even when idle. */
  minWorkers: number;
  /** `dynamic`, `ondemand`, `dedicated`: most workers at once. */
  maxWorkers: number;
  /** `dynamic`: idle workers kept ready ahead of demand. */
  minSpare: number;
  /** `dynamic`: idle workers above which idle ones stop. */
  maxSpare: number;
  /** `dynamic`, `ondemand`, `dedicated`: ms a worker may sit idle before it stops. */
  idleTimeout: number;
  /** Directory for the worker sockets (private to the proxy). */
  socketDir: string;
  /** The command line of a worker, given its socket path. */
  commandLine: (socket: string) => CommandLine;
  /** Requests one worker may have in flight. */
  maxInFlightPerWorker: number;
  /** Milliseconds a worker may take to get ready. */
  startTimeout: number;
  /** What makes a worker ready. */
  readyCheck: ReadyCheck;
  /** Milliseconds a worker gets to exit when asked, before SIGKILL. */
  shutdownGrace: number;
  /** Unwritten bytes per worker above which it takes no new requests. */
  workerWriteLimit: number;
  /** Largest message accepted from a worker. */
  maxMessageSize: number;
  /** How errors are written when a worker sends a request of its own. */
  errorFormat: ErrorFormat;
  /** Requests after which a worker is retired; 0 = never. */
  maxRequests: number;
  /** Random extra requests (0 to this) per worker, so workers do not retire together. */
  maxRequestsJitter: number;
  /** Resident memory in MiB above which a worker is retired; 0 = no limit. */
  maxMemoryMb: number;
  /** Milliseconds between memory readings. */
  memoryCheckInterval: number;
  /** Exits of one worker within `crashLoopWindow` that make a crash loop. */
  crashLoopThreshold: number;
  /** The window of `crashLoopThreshold` (ms). */
  crashLoopWindow: number;
  /** Milliseconds a crash-looping worker rests before it is tried again. */
  crashLoopCooldown: number;
  /** Lines of output logged per worker per second; 0 = all. @default {0} */
  workerLogRate?: number;
  /** Starts processes; tests inject fakes. */
  spawn?: SpawnFn;
  /** Connects to a worker socket; tests inject fakes. */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Randomness for jitter. @default {Math.random} */
  random?: () => number;
}

// A place for one worker at a time (and its replacement and retirees): its
// number, key and history survive the worker.
interface Slot {
  id: number;
  key: string | undefined;
  worker: Worker | null; // the current one: starting or ready
  next: Worker | null; // a replacement getting ready (reload)
  retiring: Set<Worker>; // old ones finishing their work
  restarts: number;
  failedStarts: number; // in a row, for the backoff
  timer: ReturnType<typeof setTimeout> | undefined;
  crashLoopUntil: number;
  guard: CrashLoopGuard;
  lastError: ProxyError | null;
  lastExit: string | null; // why its last worker exited, in words
}

const PAST_EXITS_KEPT = 20;

/** The pin of a dedicated key's calls in the dispatcher's queue. */
export function keyPin(key: string): string {
  return `key:${key}`;
}

/**
 * The local worker processes. Use through a `Dispatcher`.
 */
export class Supervisor implements EndpointSet {
  readonly mode: PoolMode;
  readonly #o: SupervisorOptions;
  readonly #slots = new Set<Slot>();
  readonly #byKey = new Map<string, Slot>();
  #ready: Worker[] = [];
  #anyReady: Placement = { hosts: [] };
  #nextSlotId = 1;
  #nextHostId = 1;
  #spawns = 0;
  #closing = false;
  #started = false;
  #events: SetEvents | null = null;
  #nextMemoryCheck = 0;
  #reloading: Promise<{ replaced: number; failed: number }> | null = null;
  readonly #random: () => number;
  readonly #pastExits: ExitRecord[] = [];
  readonly #log = getLogger(["pool"]);
  readonly totals = { spawns: 0, crashes: 0, worker_exits: 0, recycles: 0 };

  /** @param options Mode, sizes, limits and how to start a worker. */
  constructor(options: SupervisorOptions) {
    this.#o = { ...options };
    this.mode = options.mode;
    this.#random = options.random ?? Math.random;
  }

  /** Workers in `static` mode; the most workers otherwise. */
  get size(): number {
    return this.mode === "static" ? this.#o.workers : this.#o.maxWorkers;
  }

  /** The current workers, for tests and tooling. */
  get workers(): readonly Worker[] {
    const out: Worker[] = [];
    for (const slot of this.#slots) if (slot.worker) out.push(slot.worker);
    return out;
  }

  /**
   * Starts the workers the mode wants up front and waits until they are ready
   * (`static`: all; `dynamic`: the minimum; `ondemand`, `dedicated`: none).
   *
   * @throws {ProxyError} `NO_WORKERS` when one cannot start; the others are stopped.
   */
  async start(events: SetEvents): Promise<void> {
    this.#events = events;
    const initial = this.mode === "static"
      ? this.#o.workers
      : this.mode === "dynamic"
      ? Math.max(this.#o.minWorkers, this.#o.minSpare)
      : 0;
    const slots = Array.from(
      { length: Math.min(initial, this.#o.maxWorkers) },
      () => this.#newSlot(undefined),
    );
    const results = await Promise.all(slots.map((s) => this.#startWorker(s, false)));
    const failed = slots.find((_s, i) => !results[i]);
    if (failed) {
      const err = failed.lastError!;
      await this.close(0);
      throw err;
    }
    this.#started = true;
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
      guard: new CrashLoopGuard({
        threshold: this.#o.crashLoopThreshold,
        windowMs: this.#o.crashLoopWindow,
      }),
      lastError: null,
      lastExit: null,
    };
    this.#slots.add(slot);
    if (key !== undefined) this.#byKey.set(key, slot);
    return slot;
  }

  #removeSlot(slot: Slot): void {
    this.#slots.delete(slot);
    if (slot.key !== undefined && this.#byKey.get(slot.key) === slot) this.#byKey.delete(slot.key);
    if (slot.timer !== undefined) clearTimeout(slot.timer);
  }

  // Starts a worker in `slot`: as its current worker, or (replacing) as the
  // one that takes over once ready. Resolves true once ready.
  #startWorker(slot: Slot, replacing: boolean): Promise<boolean> {
    this.totals.spawns++;
    this.#spawns++;
    const socket = `${this.#o.socketDir}/w${slot.id}.${this.#spawns}.sock`;
    const o = this.#o;
    const output = new WorkerOutput({
      workerId: slot.id,
      pid: () => worker.pid,
      rate: o.workerLogRate ?? 0,
    });
    const worker: Worker = new Worker({
      hostId: this.#nextHostId++,
      slot: slot.id,
      socket,
      commandLine: o.commandLine(socket),
      startTimeout: o.startTimeout,
      readyCheck: o.readyCheck,
      shutdownGrace: o.shutdownGrace,
      maxInFlight: o.maxInFlightPerWorker,
      maxMessageSize: o.maxMessageSize,
      writeLimit: o.workerWriteLimit,
      errorFormat: o.errorFormat,
      ...(o.spawn ? { spawn: o.spawn } : {}),
      ...(o.connect ? { connect: o.connect } : {}),
      onOutput: (_w, line) => output.write(line),
      onAnswer: (w, call) => this.#onAnswer(slot, w, call),
      onFreed: (w) => this.#events?.onCapacity(w),
      onDrain: (w) => this.#setReady(this.#ready.filter((r) => r !== w)),
      onExit: (w, status, orphans, error) => {
        output.close();
        this.#onExit(slot, w, status, orphans, error);
      },
    });
    worker.key = slot.key;
    if (o.maxRequests > 0) {
      worker.retireAfter = o.maxRequests + Math.floor(this.#random() * (o.maxRequestsJitter + 1));
    }
    if (replacing) slot.next = worker;
    else slot.worker = worker;
    return worker.start().then(() => {
      slot.failedStarts = 0;
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
      if (this.mode !== "dedicated") this.#setReady([...this.#ready, worker]);
      this.#events?.onCapacity(worker);
      return true;
    }, (err: ProxyError) => {
      if (replacing) slot.next = null;
      else slot.worker = null;
      slot.lastError = err;
      slot.lastExit = err.message.split("\n")[0]!;
      if (this.#closing) return false;
      slot.failedStarts++;
      this.#log.error(err.message);
      if (!replacing) this.#afterExit(slot, true);
      return false;
    });
  }

  // A new array whenever membership changes, so balancers can cache by
  // identity; the placement answered for every unpinned call goes with it.
  #setReady(ready: Worker[]): void {
    this.#ready = ready;
    this.#anyReady = { hosts: ready };
  }

  // An unexpected exit (a failed start, or a crash after ready): restart with
  // backoff, or stop for a while when the slot is in a crash loop.
  #afterExit(slot: Slot, failedStart: boolean): void {
    if (!this.#started) return; // start() reports it
    const now = performance.now();
    let delay = failedStart ? backoffDelay(slot.failedStarts - 1) : 0;
    if (slot.guard.record()) {
      const cooldown = this.#o.crashLoopCooldown;
      slot.crashLoopUntil = now + cooldown;
      slot.guard.reset();
      delay = cooldown;
      this.#log.fatal(
        `Worker ${slot.id}${
          slot.key === undefined ? "" : ` (key ${slot.key})`
        } is crash-looping: it exited ${this.#o.crashLoopThreshold} times within ${this.#o.crashLoopWindow} ms; ` +
          `not respawning for ${cooldown} ms. Requests get NO_WORKERS meanwhile. Last exit: ${slot.lastExit}`,
      );
      const error = this.#noWorkers(slot);
      this.#events?.onStranded(slot.key === undefined ? undefined : keyPin(slot.key), error);
      if (slot.key === undefined && !this.live()) this.#events?.onStranded(undefined, error);
    }
    // A dedicated key with nothing waiting gives its place back; in a crash
    // loop it keeps the slot (so its requests fail fast) until the rest ends.
    if (this.mode === "dedicated" && slot.crashLoopUntil === 0 && this.#waiting(slot) === 0) {
      this.#removeSlot(slot);
      return;
    }
    const restart = () => {
      slot.timer = undefined;
      if (this.#closing || !this.#slots.has(slot)) return;
      if (slot.crashLoopUntil !== 0 && performance.now() >= slot.crashLoopUntil) {
        slot.crashLoopUntil = 0;
      }
      if (this.mode === "dedicated" && this.#waiting(slot) === 0) this.#removeSlot(slot);
      else if (!slot.worker) void this.#startWorker(slot, false);
    };
    if (delay === 0) restart();
    else slot.timer = setTimeout(restart, delay);
  }

  // Calls the dispatcher holds for a dedicated slot's key.
  #waiting(slot: Slot): number {
    return slot.key === undefined ? 0 : this.#events?.waiting(keyPin(slot.key)) ?? 0;
  }

  #noWorkers(slot: Slot | undefined): WireError {
    const err = slot?.lastError;
    const why = slot?.lastExit ?? err?.message.split("\n")[0];
    return {
      code: ErrorCode.NO_WORKERS,
      message: `Cannot forward request: no worker available${why ? ` (${why})` : ""}`,
      data: { stderr: (err?.data as { stderr?: string[] } | undefined)?.stderr ?? [] },
    };
  }

  /** True when some worker is ready or starting, or may be started. */
  live(): boolean {
    if (this.#ready.length > 0) return true;
    const now = performance.now();
    for (const slot of this.#slots) {
      if (slot.worker || slot.next || slot.crashLoopUntil <= now) return true;
    }
    return this.mode !== "static" && this.#slots.size < this.#o.maxWorkers;
  }

  /** `NO_WORKERS`, with the last failed worker's output. */
  unavailable(): WireError {
    let found: Slot | undefined;
    for (const slot of this.#slots) if (slot.lastError || slot.lastExit) found = slot;
    return this.#noWorkers(found);
  }

  /** Where a call may go: any ready worker, or (dedicated) its key's. */
  place(call: Call): Placement {
    if (this.mode !== "dedicated") return this.#anyReady;
    const key = call.key;
    if (key === undefined) {
      return {
        error: {
          code: ErrorCode.NO_ROUTE_KEY,
          message: `Cannot route ${call.method}: the request has no routing key`,
        },
      };
    }
    let slot = this.#byKey.get(key);
    if (!slot) {
      if (call.notification) return { pin: keyPin(key), host: null };
      if (this.#slots.size >= this.#o.maxWorkers) {
        return {
          error: {
            code: ErrorCode.WORKER_LIMIT,
            message: `Cannot start a worker for key ${
              JSON.stringify(key)
            }: ${this.#o.maxWorkers} dedicated workers already run`,
            data: { max_workers: this.#o.maxWorkers },
          },
        };
      }
      slot = this.#newSlot(key);
    }
    if (slot.crashLoopUntil > performance.now()) return { error: this.#noWorkers(slot) };
    const w = slot.worker;
    if (w && w.state === "ready") return { pin: keyPin(key), host: w };
    // Two requests for a new key at once start one worker: the slot holds it.
    if (!w && slot.timer === undefined && !call.notification) void this.#startWorker(slot, false);
    return { pin: keyPin(key), host: null };
  }

  /** Counts a request sent, and retires a worker that has taken its share. */
  sent(host: Host, _call: Call): void {
    const worker = host as Worker;
    if (this.mode === "dynamic") this.demand(0);
    // Counted when sent, so a worker takes exactly max-requests requests.
    if (worker.assigned >= worker.retireAfter) {
      const slot = this.#slotOf(worker);
      if (slot) this.#retire(slot, worker, "max-requests");
    }
  }

  #slotOf(worker: Worker): Slot | undefined {
    for (const slot of this.#slots) {
      if (slot.id === worker.slot) return slot;
    }
    return undefined;
  }

  #onAnswer(slot: Slot, worker: Worker, call: Call): void {
    if (worker.state === "draining" && worker.inFlight === 0 && slot.retiring.has(worker)) {
      this.#events?.onAnswered?.(worker, call);
      worker.shutdown();
      return;
    }
    this.#events?.onAnswer(worker, call);
  }

  #onExit(slot: Slot, worker: Worker, status: ExitStatus, orphans: Call[], error: WireError): void {
    this.#setReady(this.#ready.filter((w) => w !== worker));
    this.totals.worker_exits++;
    const crashed = !worker.shutdownRequested;
    if (crashed && worker.becameReady) this.totals.crashes++;
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
    const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
    if (crashed && worker.becameReady) {
      const lines = worker.lastLines();
      slot.lastExit = `worker ${worker.slot} (pid ${worker.pid}) exited with ${how}${
        worker.killReason ? ` (${worker.killReason})` : ""
      }${lines.length > 0 ? `; last output: ${lines.slice(-3).join(" | ")}` : ""}`;
      slot.lastError = new ProxyError(ErrorCode.NO_WORKERS, slot.lastExit, {
        data: { pid: worker.pid, stderr: lines },
      });
      if (!this.#closing) {
        this.#log.warn(
          `Worker ${worker.slot} (pid ${worker.pid}) exited with ${how}${
            worker.killReason ? ` (${worker.killReason})` : ""
          }; replacing it`,
        );
      }
    }
    // Its requests never answered: the dispatcher retries or fails them.
    if (orphans.length > 0) this.#events?.onOrphans(worker, orphans, error);
    if (this.#closing) return;
    if (wasCurrent && worker.becameReady && !slot.next) {
      if (crashed) {
        slot.restarts++;
        this.#afterExit(slot, false);
      } else if (this.mode === "static" || this.#waiting(slot) > 0) {
        // The mode keeps its number of workers, or requests came for this
        // key while its worker stopped: start a new one.
        void this.#startWorker(slot, false);
      } else {
        // Stopped for being idle: the slot goes; its key gets a new worker
        // on its next request.
        this.#removeSlot(slot);
      }
    }
    this.demand(0);
  }

  // Retirement (max-requests, max-memory): the worker takes no new work at
  // once, finishes what it has and stops; a replacement starts meanwhile
  // (other workers, or the queue, take the requests in between).
  #retire(slot: Slot, worker: Worker, why: string): void {
    if (slot.worker !== worker || worker.state !== "ready" || slot.next || this.#closing) return;
    this.totals.recycles++;
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

  /** dynamic and ondemand: start workers ahead of demand (`waiting` calls queued). */
  demand(waiting: number): void {
    if (this.#closing || this.mode === "static" || this.mode === "dedicated" || !this.#started) {
      return;
    }
    let idle = 0;
    let starting = 0;
    for (const slot of this.#slots) {
      const w = slot.worker;
      if (!w) continue;
      if (w.state === "starting") starting++;
      else if (w.state === "ready" && w.load === 0) idle++;
    }
    let want = waiting > 0 ? Math.ceil(waiting / this.#o.maxInFlightPerWorker) - starting : 0;
    if (this.mode === "dynamic") want = Math.max(want, this.#o.minSpare - idle - starting);
    want = Math.min(want, this.#o.maxWorkers - this.#slots.size);
    for (let i = 0; i < want; i++) void this.#startWorker(this.#newSlot(undefined), false);
  }

  /** Every worker that may have requests in flight. */
  *tracked(): Iterable<TrackedHost> {
    for (const slot of this.#slots) {
      for (const w of [slot.worker, ...slot.retiring]) {
        if (w && w.state !== "exited" && w.state !== "starting") yield w;
      }
    }
  }

  /** Idle stops and memory readings. */
  housekeep(now: number): void {
    if (this.#closing) return;
    if (this.mode !== "static") this.#stopIdle(now);
    if (this.#o.maxMemoryMb > 0 && now >= this.#nextMemoryCheck) {
      this.#nextMemoryCheck = now + this.#o.memoryCheckInterval;
      void this.#checkMemory();
    }
  }

  #stopIdle(now: number): void {
    const timeout = this.#o.idleTimeout;
    let idle = 0;
    if (this.mode === "dynamic") {
      for (const slot of this.#slots) {
        if (slot.worker?.state === "ready" && slot.worker.load === 0) idle++;
      }
    }
    for (const slot of this.#slots) {
      const w = slot.worker;
      if (!w || w.state !== "ready" || w.load > 0 || slot.next) continue;
      if (now - w.idleSince < timeout) continue;
      if (this.mode === "dynamic") {
        if (this.#slots.size <= this.#o.minWorkers || idle <= this.#o.maxSpare) continue;
        idle--;
      }
      this.#log.info(
        `Stopping worker ${slot.id} (pid ${w.pid}): idle for ${Math.round(now - w.idleSince)} ms`,
      );
      w.shutdown(); // its exit removes the slot
    }
  }

  /** Reads the workers' resident memory now (for `proxy.stats`). */
  async refresh(): Promise<void> {
    await this.#checkMemory();
  }

  async #checkMemory(): Promise<void> {
    const max = this.#o.maxMemoryMb;
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
          this.totals.recycles++;
          if (await this.#startWorker(slot, true)) replaced++;
          else failed++;
        }
      } finally {
        this.#reloading = null;
      }
      this.#log.info(
        `Reload done: ${replaced} worker${
          replaced === 1 ? "" : "s"
        } replaced, ${failed} failed to start`,
      );
      return { replaced, failed };
    })();
    return this.#reloading;
  }

  /**
   * Changes settings while running. New workers (a reload, a replacement)
   * start with them; a `static` pool grows or shrinks to `workers` at once
   * (the workers let go finish what they have first).
   */
  reconfigure(
    changes: Partial<Omit<SupervisorOptions, "mode" | "socketDir" | "spawn" | "connect">>,
  ): void {
    const before = this.#o.workers;
    const guardChanged =
      (changes.crashLoopThreshold ?? this.#o.crashLoopThreshold) !== this.#o.crashLoopThreshold ||
      (changes.crashLoopWindow ?? this.#o.crashLoopWindow) !== this.#o.crashLoopWindow;
    Object.assign(this.#o, changes);
    // New limits start counting afresh; unchanged ones keep each slot's history.
    if (guardChanged) {
      for (const slot of this.#slots) {
        slot.guard = new CrashLoopGuard({
          threshold: this.#o.crashLoopThreshold,
          windowMs: this.#o.crashLoopWindow,
        });
      }
    }
    if (this.mode !== "static" || this.#closing || !this.#started) return;
    if (this.#o.workers > before) {
      for (let i = before; i < this.#o.workers; i++) {
        void this.#startWorker(this.#newSlot(undefined), false);
      }
    } else if (this.#o.workers < before) {
      // The newest slots go: the oldest workers are the warmest.
      const extra = [...this.#slots].slice(this.#o.workers);
      for (const slot of extra) {
        this.#removeSlot(slot);
        const w = slot.worker;
        slot.worker = null;
        if (slot.next) {
          slot.next.shutdown();
          slot.next = null;
        }
        if (w) this.#retireNow(slot, w);
      }
      this.#log.info(`Stopping ${extra.length} workers: --workers is now ${this.#o.workers}`);
    }
  }

  /** The supervisor's part of `proxy.stats`. */
  stats(): SetStats {
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
          unwritten_bytes: w.unwritten,
          pace_us: Math.round(w.paceUs * 10) / 10,
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
          unwritten_bytes: 0,
          pace_us: 0,
          started_at: "",
        });
      }
    }
    return {
      socket_dir: this.#o.socketDir,
      workers,
      past_exits: [...this.#pastExits],
      upstreams: [],
      totals: { ...this.totals },
    };
  }

  /**
   * Stops every worker: each is told to shut down and, after `graceMs`,
   * killed (the log names each one killed). Idempotent.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const all: Worker[] = [];
    for (const slot of this.#slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      for (const w of [slot.worker, slot.next, ...slot.retiring]) if (w) all.push(w);
    }
    for (const w of all) w.shutdown(graceMs);
    await Promise.all(all.map((w) => w.exited));
    this.#setReady([]);
  }
}
