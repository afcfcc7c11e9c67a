/**
 * A server of this program (`serve`, `backend`) started as a child process
 * and waited for until it logs `listening on ADDRESS`: the proxy that
 * `proxy test` starts without `--target` (with its workers, exactly as
 * `serve` starts them), and the servers of the benchmarks.
 *
 * @module
 */

import { readLines } from "../process/spawn.ts";
import { type Runtime, spawnProgram } from "../process/self_command.ts";

/** Lines of the child's stderr kept for error reports. */
export const KEPT_STDERR_LINES = 40;

/**
 * The readiness line: `listening on ADDRESS`. A proxy's workers listen on
 * unix sockets and it on TCP, so a `unix:` address is skipped unless asked.
 */
export const TCP_LISTENING = /listening on ((?!unix:)\S+)/;

/** Options of {@linkcode ServerProcess.start}. */
export interface ServerProcessOptions {
  /** How to re-invoke this program. @default {currentRuntime()} */
  runtime?: Runtime;
  /** Milliseconds it may take to listen. @default {60000} */
  startTimeoutMs?: number;
  /** The line that says it is ready; group 1 is the address. @default {TCP_LISTENING} */
  listening?: RegExp;
  /** Starts the child (tests and scripts inject others). @default {spawnProgram} */
  spawn?: (args: string[]) => Deno.ChildProcess;
}

/** Options of {@linkcode startProxy}. */
export interface StartProxyOptions extends ServerProcessOptions {
  /** Its number of workers. @default {navigator.hardwareConcurrency} */
  workers?: number;
  /** More `serve` flags, e.g. `["--max-in-flight-per-worker", "256"]`. */
  args?: string[];
}

/** How {@linkcode ServerProcess.stop} ended it. */
export interface StopResult {
  /** Exit code. */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** True when it had to be SIGKILLed after the grace period. */
  killed: boolean;
}

/**
 * A running server child. Always {@linkcode ServerProcess.stop} it (or
 * dispose it with `await using`), on every path.
 *
 * @example Usage
 * ```ts ignore
 * import { ServerProcess } from "./server_process.ts";
 * await using backend = await ServerProcess.start(["backend", "--listen", "127.0.0.1:0"]);
 * console.log(backend.address); // "127.0.0.1:40123"
 * ```
 */
export class ServerProcess implements AsyncDisposable {
  /** The address it listens on, as logged. */
  readonly address: string;
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[];
  readonly #status: Promise<Deno.CommandStatus>;
  readonly #output: Promise<void>;
  #exited = false;
  #stopping: Promise<StopResult> | null = null;

  private constructor(
    child: Deno.ChildProcess,
    address: string,
    lines: string[],
    output: Promise<void>,
  ) {
    this.#child = child;
    this.address = address;
    this.#lines = lines;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    this.#output = output;
  }

  /**
   * Starts this program with `args` (stderr piped) and waits for its
   * listening line.
   *
   * @param args The subcommand and its flags.
   * @param options Runtime, readiness line, time limit.
   * @returns The running server.
   * @throws {Error} When it exits or does not listen in time; its last
   * stderr lines are in the message. The child is ended first.
   */
  static async start(args: string[], options: ServerProcessOptions = {}): Promise<ServerProcess> {
    // stdin is a pipe we never write: with --parent-watch the child exits
    // when we die, even by SIGKILL.
    const child = options.spawn ? options.spawn(args) : spawnProgram(args, {
      stderr: "piped",
      stdin: "piped",
      ...(options.runtime ? { runtime: options.runtime } : {}),
    });
    const lines: string[] = [];
    const pattern = options.listening ?? TCP_LISTENING;
    let onListening!: (address: string) => void;
    const listening = new Promise<string>((resolve) => onListening = resolve);
    // Keep reading to the end, so the child never blocks on a full pipe.
    const output = readLines(child.stderr, (line) => {
      lines.push(line);
      if (lines.length > KEPT_STDERR_LINES) lines.shift();
      const m = pattern.exec(line);
      if (m?.[1] !== undefined) onListening(m[1]);
    });
    const timeoutMs = options.startTimeoutMs ?? 60_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      listening.then((address) => ({ address })),
      child.status.then((s) => ({ exited: s })),
      new Promise<{ timeout: true }>((resolve) =>
        timer = setTimeout(() => resolve({ timeout: true }), timeoutMs)
      ),
    ]);
    clearTimeout(timer);
    if ("address" in outcome) return new ServerProcess(child, outcome.address, lines, output);
    if ("timeout" in outcome) signal(child, "SIGKILL");
    await child.status;
    await output;
    const why = "exited" in outcome
      ? `it exited with code ${outcome.exited.code}`
      : `it did not listen within ${timeoutMs} ms`;
    throw new Error(
      `Cannot start ${args[0] ?? "the program"}: ${why}${
        lines.length ? `; its last output:\n${lines.join("\n")}` : ""
      }`,
    );
  }

  /** Its pid. */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once it has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Resolves with its status once it has exited. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /** Its last lines of stderr, oldest first. */
  stderrTail(): string[] {
    return [...this.#lines];
  }

  /**
   * Stops it: SIGTERM (for the proxy, a graceful stop: requests in flight
   * finish, workers exit), then SIGKILL if it is still running after
   * `graceMs`. Idempotent.
   */
  stop(options: { graceMs?: number } = {}): Promise<StopResult> {
    this.#stopping ??= this.#stop(options.graceMs ?? 15_000);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<StopResult> {
    let killed = false;
    if (!this.#exited) {
      signal(this.#child, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const inTime = await Promise.race([
        this.#status.then(() => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), graceMs)),
      ]);
      clearTimeout(timer);
      if (!inTime) {
        killed = true;
        signal(this.#child, "SIGKILL");
      }
    }
    const status = await this.#status;
    await this.#output;
    return { code: status.code, signal: status.signal, killed };
  }

  /** Stops it (see {@linkcode ServerProcess.stop}). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts `proxy serve --host 127.0.0.1 --port 0 --workers N` and waits until
 * it listens (which it does once all its workers are ready).
 *
 * @param options Workers, more flags, runtime.
 * @returns The running proxy; stop it on every path.
 * @throws {Error} When it cannot start.
 */
export function startProxy(options: StartProxyOptions = {}): Promise<ServerProcess> {
  const workers = options.workers ?? (navigator.hardwareConcurrency || 1);
  const { workers: _w, args, ...rest } = options;
  return ServerProcess.start([
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--workers",
    String(workers),
    "--parent-watch",
    // The load may call sleep, fail or crash.
    "--test-methods",
    ...(args ?? []),
  ], rest);
}

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch {
    // already exited
  }
}
