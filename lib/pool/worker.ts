/**
 * One worker: a process, the proxy's connection to it, and the requests it
 * has in flight.
 *
 * @module
 */

import { connect } from "../net/address.ts";
import { FrameConnection } from "../net/frame_connection.ts";
import {
  createEnvelope,
  encodeNotification,
  encodeRequest,
  ErrorCode,
  ProxyError,
  readEnvelope,
  REQUEST,
  type WireError,
} from "../protocol/mod.ts";
import type { Call, Requester } from "./call.ts";
import type { CommandLine } from "./worker_command.ts";
import {
  type ExitStatus,
  type SpawnFn,
  spawnWorkerProcess,
  type WorkerProcessHandle,
} from "./worker_process.ts";

/** Where a worker is in its life. */
export type WorkerState = "starting" | "ready" | "draining" | "exited";

/** Options of {@linkcode Worker}. */
export interface WorkerOptions {
  /** The pool's number for this worker (stable across its replacements). */
  id: number;
  /** Socket path the worker listens on. */
  socket: string;
  /** How to start it. */
  commandLine: CommandLine;
  /** Milliseconds it may take to get ready. @default {10000} */
  startTimeout?: number;
  /** Largest message accepted from it. @default {8388608} */
  maxMessageSize?: number;
  /** Starts the process. @default {spawnWorkerProcess} */
  spawn?: SpawnFn;
  /** Connects to its socket. @default {connect} */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Each line the process prints. */
  onOutput?: (worker: Worker, line: string) => void;
  /** After each answer, when it may take more work. */
  onAnswer?: (worker: Worker) => void;
  /** When it stops taking new work (draining), before it exits. */
  onDrain?: (worker: Worker) => void;
  /**
   * Once, when the process has exited, with the calls it never answered and
   * the error they would get. With this handler the calls are the handler's
   * to fail or retry; without it they fail with that error.
   */
  onExit?: (worker: Worker, status: ExitStatus, orphans: Call[], error: WireError) => void;
}

const envelope = createEnvelope();

/**
 * A worker process and its connection. Requests go in with
 * {@linkcode Worker.send}; answers go back to each call's requester.
 */
export class Worker {
  /** The pool's number for this worker. */
  readonly id: number;
  /** The socket it listens on. */
  readonly socket: string;
  /** Requests answered. */
  served = 0;
  /** Wall-clock start time (ms since epoch). */
  readonly startedAt: number = Date.now();
  /** Routing key it serves (dedicated mode). */
  key: string | undefined = undefined;
  /** Resident memory in MiB at the last check. */
  rssMb: number | null = null;
  /** When it last had nothing in flight (performance.now() ms). */
  idleSince: number = performance.now();
  /** Requests the pool has sent it. */
  assigned = 0;
  /** Requests after which it is retired (Infinity: never). */
  retireAfter: number = Infinity;
  #state: WorkerState = "starting";
  #process: WorkerProcessHandle | null = null;
  #conn: FrameConnection | null = null;
  readonly #pending = new Map<number, Call>();
  // Calls answered TIMEOUT whose worker has not answered yet: late answers are
  // dropped, and one stuck past kill-after gets the worker killed.
  readonly #overdue = new Map<number, Call>();
  #shutdownRequested = false;
  #nextId = 0;
  #exitStatus: ExitStatus | null = null;
  #exited: Promise<ExitStatus> | null = null;
  #killReason: string | null = null;
  #becameReady = false;
  readonly #options: WorkerOptions;

  /** @param options What to start and whom to tell. */
  constructor(options: WorkerOptions) {
    this.id = options.id;
    this.socket = options.socket;
    this.#options = options;
  }

  /** Its state. */
  get state(): WorkerState {
    return this.#state;
  }

  /** True once it has been ready (a worker that dies at start never was). */
  get becameReady(): boolean {
    return this.#becameReady;
  }

  /** Its pid, once spawned. */
  get pid(): number | null {
    return this.#process?.pid ?? null;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** How it exited, once it has. */
  get exitStatus(): ExitStatus | null {
    return this.#exitStatus;
  }

  /** True once asked to shut down (its exit is then no crash). */
  get shutdownRequested(): boolean {
    return this.#shutdownRequested;
  }

  /** Its last lines of output. */
  lastLines(): string[] {
    return this.#process?.lastLines() ?? [];
  }

  /** Resolves when the process has exited. */
  get exited(): Promise<ExitStatus> {
    return this.#exited ?? Promise.resolve({ code: 0, signal: null });
  }

  /**
   * Spawns the process and waits until its socket accepts and it answers
   * `ping`. On failure the process is killed.
   *
   * @throws {ProxyError} `NO_WORKERS` with the worker's last output in `data`.
   */
  async start(): Promise<void> {
    const spawn = this.#options.spawn ?? spawnWorkerProcess;
    try {
      this.#process = spawn(
        this.#options.commandLine,
        (line) => this.#options.onOutput?.(this, line),
      );
    } catch (err) {
      this.#state = "exited";
      this.#exitStatus = { code: 127, signal: null };
      const what = err instanceof Deno.errors.NotFound
        ? `command not found: ${this.#options.commandLine.cmd}`
        : (err as Error).message;
      throw new ProxyError(ErrorCode.NO_WORKERS, `Cannot start worker ${this.id}: ${what}`, {
        cause: err,
      });
    }
    this.#exited = this.#process.status.then((status) => {
      this.#onExit(status);
      return status;
    });
    const timeout = this.#options.startTimeout ?? 10_000;
    const deadline = performance.now() + timeout;
    try {
      const conn = await this.#connectUntil(deadline);
      this.#attach(conn);
      await this.#ping(deadline);
      this.served = 0; // the readiness ping is not a request
      if (this.#state === "starting") {
        this.#state = "ready";
        this.#becameReady = true;
      }
    } catch (err) {
      this.kill("did not get ready");
      await this.#exited;
      const status = this.#exitStatus;
      const why = status && this.#killReason === null
        ? `exited with code ${status.code}${
          status.signal ? ` (${status.signal})` : ""
        } while starting`
        : err instanceof ProxyError && err.code === ErrorCode.TIMEOUT
        ? `not ready within ${timeout} ms`
        : (err as Error).message;
      const lines = this.lastLines();
      const output = lines.length > 0
        ? `; its last output:\n  ${lines.join("\n  ")}`
        : "; it printed nothing";
      throw new ProxyError(
        ErrorCode.NO_WORKERS,
        `Cannot start worker ${this.id}: ${why}${output}`,
        {
          data: { pid: this.pid, stderr: lines },
          cause: err,
        },
      );
    }
  }

  async #connectUntil(deadline: number): Promise<Deno.Conn> {
    const connectFn = this.#options.connect ??
      ((path: string) => connect({ transport: "unix", path }));
    let wait = 2;
    while (true) {
      if (this.#exitStatus) throw new Error("exited while starting");
      try {
        return await connectFn(this.socket);
      } catch {
        // not listening yet
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new ProxyError(ErrorCode.TIMEOUT, "not ready in time");
      await Promise.race([new Promise((r) => setTimeout(r, Math.min(wait, left))), this.#exited]);
      wait = Math.min(wait * 2, 50);
    }
  }

  #attach(raw: Deno.Conn): void {
    const conn = new FrameConnection(raw, {
      ...(this.#options.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#options.maxMessageSize }),
      onFrame: (frame) => this.#onFrame(frame),
      onProtocolError: (err) => this.kill(`sent an invalid stream: ${err.message}`),
      onClose: () => {
        // A dying worker drops the connection just before its exit is seen;
        // one that drops it and lives on cannot be reached: kill it.
        if (this.#state === "exited") return;
        this.drain();
        const timer = setTimeout(() => this.kill("closed its connection"), 500);
        void this.exited.then(() => clearTimeout(timer));
      },
    });
    this.#conn = conn;
    conn.run().catch(() => conn.close());
  }

  #ping(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ProxyError(ErrorCode.TIMEOUT, "no answer to ping")),
        Math.max(0, deadline - performance.now()),
      );
      const requester: Requester = {
        closed: false,
        deliver: () => {
          clearTimeout(timer);
          resolve();
        },
        // Any answer, even an error, shows the worker speaks the protocol.
        fail: (_msgid, error) => {
          clearTimeout(timer);
          if (error.code === ErrorCode.WORKER_EXITED) reject(new Error("exited while starting"));
          else resolve();
        },
      };
      const id = this.#take({ requester, msgid: 0, method: "ping" });
      this.#conn!.write(encodeRequest(id, "ping", []));
    });
  }

  #take(call: Call): number {
    const id = this.#nextId;
    this.#nextId = (id + 1) >>> 0;
    this.#pending.set(id, call);
    return id;
  }

  /**
   * Forwards a request frame (`frame` from offset `tail` on, after the
   * client's msgid) under a msgid of our own. Hot path.
   */
  send(call: Call, frame: Uint8Array, tail: number): void {
    const id = this.#take(call);
    this.#conn!.writeWithMsgid(REQUEST, id, frame, tail);
  }

  /**
   * Forwards a notification frame as it is. Notifications are not bounded by
   * requests in flight, so one is dropped (false) while the worker does not
   * read what it was sent.
   */
  notify(frame: Uint8Array): boolean {
    if (!this.#conn || this.#conn.congested) return false;
    this.#conn.write(frame);
    return true;
  }

  #onFrame(frame: Uint8Array): void {
    try {
      readEnvelope(frame, envelope);
    } catch (err) {
      this.kill(`sent an invalid message: ${(err as Error).message}`);
      return;
    }
    if (envelope.type !== 1) return; // workers only answer
    const call = this.#pending.get(envelope.msgid);
    if (call === undefined) {
      // Answered already (TIMEOUT) or cancelled: drop it.
      if (this.#overdue.delete(envelope.msgid)) this.served++;
      return;
    }
    this.#pending.delete(envelope.msgid);
    this.served++;
    if (this.#pending.size === 0) this.idleSince = performance.now();
    if (!call.requester.closed) call.requester.deliver(call.msgid, frame, envelope.tail);
    if (this.#state !== "starting") this.#options.onAnswer?.(this); // not for the readiness ping
  }

  /**
   * Answers `TIMEOUT` for calls past their deadline, freeing their places at
   * once; returns the oldest call still unanswered by the worker, to judge
   * whether it is stuck.
   */
  sweep(now: number, onTimeout: (call: Call) => void): Call | undefined {
    let freed = false;
    for (const [id, call] of this.#pending) {
      if (call.deadline !== undefined && call.deadline <= now) {
        this.#pending.delete(id);
        this.#overdue.set(id, call);
        freed = true;
        onTimeout(call);
      }
    }
    if (freed && this.#pending.size === 0) this.idleSince = now;
    let oldest: Call | undefined;
    for (const call of this.#overdue.values()) {
      if (oldest === undefined || call.startedAt! < oldest.startedAt!) oldest = call;
    }
    for (const call of this.#pending.values()) {
      if (
        call.startedAt !== undefined && (oldest === undefined || call.startedAt < oldest.startedAt!)
      ) oldest = call;
      break; // insertion order: the first pending is the oldest pending
    }
    return oldest;
  }

  /** Forgets the calls of a requester that went away; their places free at once. */
  cancelFor(requester: Requester): void {
    for (const [id, call] of this.#pending) {
      if (call.requester === requester) {
        this.#pending.delete(id);
        // Tracked on only when deadlines are on, so a stuck worker is still caught.
        if (call.startedAt !== undefined) this.#overdue.set(id, call);
      }
    }
    if (this.#pending.size === 0) this.idleSince = performance.now();
  }

  /** Stops giving it new work; it keeps answering what it has. */
  drain(): void {
    if (this.#state === "starting" || this.#state === "ready") {
      this.#state = "draining";
      this.#options.onDrain?.(this);
    }
  }

  /**
   * Asks it to stop: a `shutdown` notification, then stdin closed. It
   * finishes what it has in flight.
   */
  shutdown(): void {
    this.#shutdownRequested = true;
    this.drain();
    this.#conn?.write(encodeNotification("shutdown", []));
    this.#process?.closeStdin();
  }

  /** Kills it with SIGKILL; its calls fail with `WORKER_EXITED`. */
  kill(reason: string): void {
    if (this.#state === "exited") return;
    this.#killReason ??= reason;
    this.#process?.kill("SIGKILL");
  }

  /** Why it was killed by the proxy, if it was. */
  get killReason(): string | null {
    return this.#killReason;
  }

  #onExit(status: ExitStatus): void {
    this.#state = "exited";
    this.#exitStatus = status;
    this.#conn?.close();
    const error: WireError = {
      code: ErrorCode.WORKER_EXITED,
      message: `Cannot answer: worker ${this.id} (pid ${this.pid}) exited${
        status.signal ? ` on ${status.signal}` : ` with code ${status.code}`
      }${this.#killReason ? ` (${this.#killReason})` : ""}`,
      data: { worker: this.id, pid: this.pid, code: status.code, signal: status.signal },
    };
    const calls = [...this.#pending.values()];
    this.#pending.clear();
    this.#overdue.clear();
    if (this.#options.onExit) this.#options.onExit(this, status, calls, error);
    else {for (const call of calls) {
        if (!call.requester.closed) call.requester.fail(call.msgid, error);
      }}
  }
}
