/**
 * A local worker: a process the supervisor spawned, and the endpoint that
 * connects the proxy to its Unix socket. As a {@linkcode Host}, the
 * dispatcher sends it requests like to any other host.
 *
 * @module
 */

import { connect } from "../net/address.ts";
import { ErrorCode, type ErrorFormat, ProxyError, type WireError } from "../protocol/mod.ts";
import { getLogger } from "../log.ts";
import type { CommandLine } from "../process/self_command.ts";
import {
  type ExitStatus,
  type SpawnFn,
  spawnWorkerProcess,
  type WorkerProcessHandle,
} from "../process/spawn.ts";
import type { Call, Requester } from "./call.ts";
import { Endpoint } from "./endpoint.ts";
import type { TrackedHost } from "./endpoint_set.ts";
import { ServicePace } from "./service_pace.ts";

/** Where a worker is in its life. */
export type WorkerState = "starting" | "ready" | "draining" | "exited";

/** What makes a worker ready: its socket accepts and it answers `ping`, or it accepts only. */
export type ReadyCheck = "ping" | "connect";

/** The ready checks, for flag validation. */
export const READY_CHECKS: readonly ReadyCheck[] = ["ping", "connect"];

/** Options of {@linkcode Worker}. */
export interface WorkerOptions {
  /** Unique among all hosts (never reused). */
  hostId: number;
  /** The supervisor's slot number (kept across replacements). */
  slot: number;
  /** Socket path the worker listens on. */
  socket: string;
  /** How to start it. */
  commandLine: CommandLine;
  /** Milliseconds it may take to get ready. @default {10000} */
  startTimeout?: number;
  /** How readiness is judged. @default {"ping"} */
  readyCheck?: ReadyCheck;
  /** Milliseconds it gets to exit once asked, before SIGKILL. @default {5000} */
  shutdownGrace?: number;
  /** Requests it may have in flight. @default {128} */
  maxInFlight?: number;
  /** Largest message accepted from it. @default {8388608} */
  maxMessageSize?: number;
  /** Unwritten bytes above which it takes no new requests. @default {4194304} */
  writeLimit?: number;
  /** How errors are written when it sends a request of its own. @default {"map"} */
  errorFormat?: ErrorFormat;
  /** Starts the process. @default {spawnWorkerProcess} */
  spawn?: SpawnFn;
  /** Connects to its socket. @default {connect} */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Each line the process prints. */
  onOutput?: (worker: Worker, line: string) => void;
  /** After each answer. */
  onAnswer?: (worker: Worker, call: Call) => void;
  /** When a request it works on past its deadline (or cancelled) ends: it has room again. */
  onFreed?: (worker: Worker) => void;
  /** When it stops taking new work (draining), before it exits. */
  onDrain?: (worker: Worker) => void;
  /**
   * Once, when the process has exited, with the calls it never answered and
   * the error they would get; they are the handler's to fail or retry.
   */
  onExit: (worker: Worker, status: ExitStatus, orphans: Call[], error: WireError) => void;
}

const log = getLogger(["pool"]);

/**
 * A worker process and its connection. Its requests go in with
 * {@linkcode Worker.send}; answers go back to each call's requester.
 */
export class Worker implements TrackedHost {
  /** Unique host id. */
  readonly id: number;
  /** The supervisor's slot number. */
  readonly slot: number;
  /** The socket it listens on. */
  readonly socket: string;
  /** Wall-clock start time (ms since epoch). */
  readonly startedAt: number = Date.now();
  /** Routing key it serves (dedicated mode). */
  key: string | undefined = undefined;
  /** Workers all weigh the same. */
  readonly weight = 1;
  /** A local worker is warm once ready. */
  readonly warmth = 1;
  /** Resident memory in MiB at the last check. */
  rssMb: number | null = null;
  /** When it last had nothing in flight (performance.now() ms). */
  idleSince: number = performance.now();
  /** Requests the supervisor has sent it. */
  assigned = 0;
  /** Requests after which it is retired (Infinity: never). */
  retireAfter: number = Infinity;
  #state: WorkerState = "starting";
  #process: WorkerProcessHandle | null = null;
  #endpoint: Endpoint | null = null;
  #orphans: Call[] = [];
  #shutdownRequested = false;
  #exitStatus: ExitStatus | null = null;
  #exited: Promise<ExitStatus> | null = null;
  #killReason: string | null = null;
  #becameReady = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #maxInFlight: number;
  readonly #options: WorkerOptions;
  readonly #pace = new ServicePace();

  /** @param options What to start and whom to tell. */
  constructor(options: WorkerOptions) {
    this.id = options.hostId;
    this.slot = options.slot;
    this.socket = options.socket;
    this.#options = options;
    this.#maxInFlight = options.maxInFlight ?? 128;
  }

  /** `worker N`. */
  get label(): string {
    return `worker ${this.slot}`;
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

  /** Requests sent and not yet answered (nor timed out). */
  get inFlight(): number {
    return this.#endpoint?.inFlight ?? 0;
  }

  /** Requests it works on, those answered `TIMEOUT` already included. */
  get load(): number {
    return this.#endpoint?.load ?? 0;
  }

  /** Requests answered. */
  get served(): number {
    return this.#endpoint?.served ?? 0;
  }

  /** Not measured for local workers (least-request balances them). */
  get latencyMs(): number {
    return 0;
  }

  /** Microseconds of work per answer (0 until measured). */
  get paceUs(): number {
    return this.#pace.us;
  }

  /** Bytes the proxy has queued for it and not yet written. */
  get unwritten(): number {
    return this.#endpoint?.unwritten ?? 0;
  }

  /** Ready, under its in-flight limit, and reading what it is sent. */
  get available(): boolean {
    const e = this.#endpoint;
    return this.#state === "ready" && e !== null && e.load < this.#maxInFlight && e.writable;
  }

  /** How it exited, once it has. */
  get exitStatus(): ExitStatus | null {
    return this.#exitStatus;
  }

  /** True once asked to shut down (its exit is then no crash). */
  get shutdownRequested(): boolean {
    return this.#shutdownRequested;
  }

  /** Why it was killed by the proxy, if it was. */
  get killReason(): string | null {
    return this.#killReason;
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
   * Spawns the process and waits until it is ready (see `readyCheck`). On
   * failure the process is killed.
   *
   * @throws {ProxyError} `NO_WORKERS` naming what was waited for, with the
   * worker's last output in `data`.
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
      throw new ProxyError(ErrorCode.NO_WORKERS, `Cannot start worker ${this.slot}: ${what}`, {
        cause: err,
      });
    }
    this.#exited = this.#process.status.then((status) => {
      this.#onExit(status);
      return status;
    });
    const timeout = this.#options.startTimeout ?? 10_000;
    const check = this.#options.readyCheck ?? "ping";
    const deadline = performance.now() + timeout;
    try {
      const conn = await this.#connectUntil(deadline);
      this.#attach(conn);
      // Any answer, even an error, shows the worker speaks the protocol.
      if (check === "ping") {
        await this.#endpoint!.request("ping", [], Math.max(1, deadline - performance.now()));
      }
      if (this.#state === "starting") {
        this.#state = "ready";
        this.#becameReady = true;
        this.idleSince = performance.now();
      }
    } catch (err) {
      this.kill("did not get ready");
      await this.#exited;
      const status = this.#exitStatus;
      const waited = check === "ping"
        ? "its socket to accept and it to answer ping (--ready-check ping)"
        : "its socket to accept (--ready-check connect)";
      const why = status && this.#killReason === null
        ? `exited with code ${status.code}${
          status.signal ? ` (${status.signal})` : ""
        } while starting`
        : err instanceof ProxyError && err.code === ErrorCode.TIMEOUT
        ? `not ready within ${timeout} ms (waited for ${waited})`
        : `${(err as Error).message} (waited for ${waited})`;
      const lines = this.lastLines();
      const output = lines.length > 0
        ? `; its last output:\n  ${lines.join("\n  ")}`
        : "; it printed nothing";
      throw new ProxyError(
        ErrorCode.NO_WORKERS,
        `Cannot start worker ${this.slot}: ${why}${output}`,
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

  #attach(conn: Deno.Conn): void {
    this.#endpoint = new Endpoint(conn, {
      label: `worker ${this.slot} (pid ${this.pid})`,
      pace: this.#pace,
      ...(this.#options.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#options.maxMessageSize }),
      ...(this.#options.writeLimit === undefined ? {} : { writeLimit: this.#options.writeLimit }),
      ...(this.#options.errorFormat === undefined
        ? {}
        : { errorFormat: this.#options.errorFormat }),
      onAnswer: (endpoint, call) => {
        if (endpoint.inFlight === 0) this.idleSince = performance.now();
        if (this.#state !== "starting") this.#options.onAnswer?.(this, call);
      },
      onFreed: () => {
        if (this.#state === "ready") this.#options.onFreed?.(this);
      },
      onProtocolError: (_e, message) => this.kill(message),
      onClose: (_e, orphans) => {
        this.#orphans.push(...orphans);
        // A dying worker drops the connection just before its exit is seen;
        // one that drops it and lives on cannot be reached: kill it.
        if (this.#state === "exited") return;
        this.drain();
        const timer = setTimeout(() => this.kill("closed its connection"), 500);
        void this.exited.then(() => clearTimeout(timer));
      },
    });
  }

  /** Forwards a request (hot path). */
  send(call: Call): void {
    this.assigned++;
    this.#endpoint!.send(call);
  }

  /**
   * Forwards a notification frame as it is; dropped (false) while the worker
   * does not read what it was sent.
   */
  notify(frame: Uint8Array): boolean {
    return this.#endpoint?.notify(frame) ?? false;
  }

  /**
   * Moves requests past their deadline out of flight (calling `onTimeout`
   * for each); returns the oldest request it still works on.
   */
  sweep(now: number, onTimeout: (call: Call) => void): Call | undefined {
    const e = this.#endpoint;
    if (!e) return undefined;
    const before = e.inFlight;
    const oldest = e.sweep(now, onTimeout);
    if (before > 0 && e.inFlight === 0) this.idleSince = now;
    return oldest;
  }

  /** Forgets the requests of a requester that went away; their places free at once. */
  cancelFor(requester: Requester): void {
    const e = this.#endpoint;
    if (!e || e.inFlight === 0) return;
    e.cancelFor(requester);
    if (e.inFlight === 0) this.idleSince = performance.now();
  }

  /** Stops giving it new work; it keeps answering what it has. */
  drain(): void {
    if (this.#state === "starting" || this.#state === "ready") {
      this.#state = "draining";
      this.#options.onDrain?.(this);
    }
  }

  /**
   * Asks it to stop: a `shutdown` notification, then stdin closed; it
   * finishes what it has in flight. One that is still running after the
   * shutdown grace is killed with SIGKILL, and the log says so.
   */
  shutdown(graceMs?: number): void {
    if (this.#state === "exited") return;
    const grace = graceMs ?? this.#options.shutdownGrace ?? 5_000;
    if (this.#shutdownRequested) {
      // Asked again with less time (the proxy is stopping): the shorter grace wins.
      if (graceMs !== undefined && graceMs < (this.#options.shutdownGrace ?? 5_000)) {
        clearTimeout(this.#graceTimer);
        this.#armGrace(grace);
      }
      return;
    }
    this.#shutdownRequested = true;
    this.drain();
    this.#endpoint?.notifyMethod("shutdown");
    this.#process?.closeStdin();
    this.#armGrace(grace);
  }

  #armGrace(grace: number): void {
    this.#graceTimer = setTimeout(() => {
      if (this.#state === "exited") return;
      log.warn(
        `Worker ${this.slot} (pid ${this.pid}) did not exit within ${grace} ms of the shutdown notification and the end of its stdin; killing it with SIGKILL`,
      );
      this.kill(`did not exit within the shutdown grace of ${grace} ms`);
    }, grace);
  }

  /** Ends a worker stuck on a request: kills it. */
  abort(reason: string): void {
    this.kill(reason);
  }

  /** Kills it with SIGKILL; its calls fail with `WORKER_EXITED`. */
  kill(reason: string): void {
    if (this.#state === "exited") return;
    this.#killReason ??= reason;
    this.#process?.kill("SIGKILL");
  }

  #onExit(status: ExitStatus): void {
    this.#state = "exited";
    this.#exitStatus = status;
    clearTimeout(this.#graceTimer);
    this.#endpoint?.close(); // its orphans arrive through onClose, synchronously
    const error: WireError = {
      code: ErrorCode.WORKER_EXITED,
      message: `Cannot answer: worker ${this.slot} (pid ${this.pid}) exited${
        status.signal ? ` on ${status.signal}` : ` with code ${status.code}`
      }${this.#killReason ? ` (${this.#killReason})` : ""}`,
      data: { worker: this.slot, pid: this.pid, code: status.code, signal: status.signal },
    };
    const orphans = this.#orphans;
    this.#orphans = [];
    this.#options.onExit(this, status, orphans, error);
  }
}
