/**
 * Helpers for integration tests that run the real `proxy` program.
 *
 * Every process a test starts should be ended by the test: start it with
 * `await using proc = spawnProgram([...])`, which SIGTERMs it (then SIGKILLs it if still
 * running) and waits for it when the scope ends, even when an assertion
 * fails. Readiness is waited for by watching stderr for a log line
 * ({@linkcode ProgramProcess.waitForLine}, {@linkcode waitListening}), never
 * by sleeping.
 *
 * Disposing ends only the process started; processes it started in turn
 * (e.g. the workers of `proxy serve`) must end on their own, as workers with
 * `--parent-watch` do when their parent dies. Output pipes such a grandchild
 * still holds are collected for at most 2 s after the process exits.
 *
 * @example Usage
 * ```ts ignore
 * import { runProgram, spawnProgram, tempDir, waitListening } from "./helpers/process.ts";
 *
 * Deno.test("backend answers ping", async () => {
 *   await using dir = await tempDir();
 *   await using backend = spawnProgram(["backend", "--socket", dir.join("w.sock")]);
 *   const address = await waitListening(backend); // "unix:/tmp/.../w.sock"
 *   const { code, stdout } = await runProgram(["client", address, "ping"]);
 *   // code === 0, stdout === '"pong"\n'
 * });
 * ```
 *
 * @module
 */

/** Absolute path of the repository root (the folder holding deno.json). */
export const REPO_ROOT: string = decodeURIComponent(new URL("../../", import.meta.url).pathname)
  .replace(/\/$/, "");

/** Absolute path of the program's entry point. */
export const MAIN_PATH: string = `${REPO_ROOT}/cli/main.ts`;

/** The permission flags the program runs with (the same as `deno task proxy`). */
export const PERMISSION_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-env",
  "--allow-sys",
];

/** Default time a helper waits for a line or a process before failing the test. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The argv (after `Deno.execPath()`) that runs `cli/main.ts` with `args`.
 *
 * @param args The program's own arguments, e.g. `"backend", "--socket", path`.
 * @returns `["run", "--quiet", "--config", <repo>/deno.json, ...permissions, <repo>/cli/main.ts, ...args]`.
 */
export function programArgs(...args: string[]): string[] {
  return [
    "run",
    "--quiet",
    "--config",
    `${REPO_ROOT}/deno.json`,
    ...PERMISSION_FLAGS,
    MAIN_PATH,
    ...args,
  ];
}

/** Options of {@linkcode spawnProgram}. */
export interface SpawnOptions {
  /** Extra environment variables (added to the test's own environment). */
  env?: Record<string, string>;
  /**
   * `"piped"` to write to the process ({@linkcode ProgramProcess.writeStdin},
   * {@linkcode ProgramProcess.closeStdin}); `"null"` to give it none.
   * @default {"null"}
   */
  stdin?: "piped" | "null";
  /** Working directory. @default {the test's working directory} */
  cwd?: string;
  /** The executable. @default {deno} */
  command?: string;
}

/** Options of {@linkcode ProgramProcess.waitForLine}. */
export interface WaitForLineOptions {
  /** Milliseconds before giving up. @default {10000} */
  timeoutMs?: number;
  /** Which output to watch. @default {"stderr"} */
  stream?: "stderr" | "stdout";
  /**
   * Index of the first line considered (lines already collected before it
   * are skipped), e.g. `proc.stderrLines.length` to wait for a new line.
   * @default {0}
   */
  from?: number;
}

interface LineWaiter {
  regex: RegExp;
  from: number;
  resolve: (match: RegExpMatchArray) => void;
}

/**
 * A running program whose stdout and stderr are collected line by line.
 * Dispose it (`await using`) to make sure it is ended.
 */
export class ProgramProcess implements AsyncDisposable {
  /** The underlying process. */
  readonly child: Deno.ChildProcess;
  /** Lines of stdout so far (without the newline). */
  readonly stdoutLines: string[] = [];
  /** Lines of stderr so far (without the newline). */
  readonly stderrLines: string[] = [];
  /**
   * Resolves with the exit status once the process has exited and its output
   * has been collected.
   */
  readonly status: Promise<Deno.CommandStatus>;
  #exited = false;
  #waiters: { stdout: Set<LineWaiter>; stderr: Set<LineWaiter> } = {
    stdout: new Set(),
    stderr: new Set(),
  };
  #exitListeners = new Set<() => void>();
  #stdinWriter: WritableStreamDefaultWriter<Uint8Array> | null = null;

  /**
   * @param denoArgs The arguments of `deno` itself, e.g. `programArgs(...)`.
   * @param options Environment, stdin and working directory.
   */
  constructor(denoArgs: string[], options: SpawnOptions = {}) {
    this.child = new Deno.Command(options.command ?? Deno.execPath(), {
      args: denoArgs,
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    }).spawn();
    if (options.stdin === "piped") this.#stdinWriter = this.child.stdin.getWriter();
    const outReader = this.child.stdout.getReader();
    const errReader = this.child.stderr.getReader();
    const readers = [
      this.#collect(outReader, this.stdoutLines, "stdout"),
      this.#collect(errReader, this.stderrLines, "stderr"),
    ];
    this.status = this.child.status.then(async (status) => {
      // A grandchild may keep the pipes open: collect what is left, but do
      // not wait for it forever.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, 2000));
      await Promise.race([Promise.all(readers), grace]);
      clearTimeout(timer);
      await outReader.cancel().catch(() => {});
      await errReader.cancel().catch(() => {});
      await Promise.all(readers);
      await this.#releaseStdin();
      this.#exited = true;
      for (const listener of this.#exitListeners) listener();
      return status;
    });
  }

  /** The process id. */
  get pid(): number {
    return this.child.pid;
  }

  /** True once the process has exited and its output is collected. */
  get exited(): boolean {
    return this.#exited;
  }

  /** All of stderr so far, one string. */
  get stderr(): string {
    return this.stderrLines.join("\n");
  }

  /** All of stdout so far, one string. */
  get stdout(): string {
    return this.stdoutLines.join("\n");
  }

  async #collect(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    lines: string[],
    name: "stdout" | "stderr",
  ): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    const add = (line: string) => {
      lines.push(line);
      for (const waiter of this.#waiters[name]) {
        if (lines.length - 1 < waiter.from) continue;
        const match = line.match(waiter.regex);
        if (match) waiter.resolve(match);
      }
    };
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += decoder.decode(value, { stream: true });
        let nl: number;
        while ((nl = rest.indexOf("\n")) >= 0) {
          add(rest.slice(0, nl).replace(/\r$/, ""));
          rest = rest.slice(nl + 1);
        }
      }
    } catch {
      // cancelled
    }
    rest += decoder.decode();
    if (rest !== "") add(rest);
  }

  /**
   * Resolves with the match as soon as a line of stderr (or stdout) matches
   * `regex`, including lines collected before the call (see `from`).
   *
   * @throws {Error} When the process exits or `timeoutMs` passes first; the
   * message includes the stderr collected so far.
   */
  waitForLine(regex: RegExp, options: WaitForLineOptions = {}): Promise<RegExpMatchArray> {
    const name = options.stream ?? "stderr";
    const from = options.from ?? 0;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const lines = name === "stderr" ? this.stderrLines : this.stdoutLines;
    for (let i = from; i < lines.length; i++) {
      const match = lines[i]!.match(regex);
      if (match) return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const waiter: LineWaiter = {
        regex,
        from,
        resolve: (match) => {
          done();
          resolve(match);
        },
      };
      const fail = (why: string) => {
        done();
        reject(
          new Error(
            `Cannot find a ${name} line matching ${regex} (pid ${this.pid}): ${why}\n` +
              `--- stderr so far ---\n${this.stderr}\n--- stdout so far ---\n${this.stdout}`,
          ),
        );
      };
      const onExit = () => fail("the process exited");
      const done = () => {
        clearTimeout(timer);
        this.#waiters[name].delete(waiter);
        this.#exitListeners.delete(onExit);
      };
      if (this.#exited) return onExit();
      this.#waiters[name].add(waiter);
      this.#exitListeners.add(onExit);
      timer = setTimeout(() => fail(`no such line within ${timeoutMs} ms`), timeoutMs);
    });
  }

  /** Writes `text` to the process's stdin (spawned with `stdin: "piped"`). */
  async writeStdin(text: string): Promise<void> {
    if (!this.#stdinWriter) throw new TypeError("Cannot write stdin: not spawned with stdin piped");
    await this.#stdinWriter.write(new TextEncoder().encode(text));
  }

  /** Closes the process's stdin (it reads end of file). Idempotent. */
  async closeStdin(): Promise<void> {
    await this.#releaseStdin();
  }

  async #releaseStdin(): Promise<void> {
    const writer = this.#stdinWriter;
    if (!writer) return;
    this.#stdinWriter = null;
    await writer.close().catch(() => {});
  }

  /**
   * Sends `signal` to the process. Does nothing once it has exited.
   *
   * @param signal @default {"SIGTERM"}
   */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (this.#exited) return;
    try {
      this.child.kill(signal);
    } catch {
      // exited in the meantime
    }
  }

  /**
   * Waits for the process to exit, failing after `timeoutMs`.
   *
   * @throws {Error} On timeout, with the stderr collected so far.
   */
  async waitExit(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `Cannot see pid ${this.pid} exit: still running after ${timeoutMs} ms\n` +
                `--- stderr so far ---\n${this.stderr}`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.status, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the process if still running (SIGTERM, then SIGKILL after 3 s) and waits until it has exited. */
  async [Symbol.asyncDispose](): Promise<void> {
    // SIGTERM first, so a server removes its sockets; SIGKILL if it lingers.
    this.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.status, new Promise((r) => timer = setTimeout(r, 3000))]);
    clearTimeout(timer);
    this.kill("SIGKILL");
    await this.status;
  }
}

/**
 * Starts the program with `args`, collecting its output line by line.
 *
 * @param args The program's arguments, e.g. `["backend", "--socket", path]`.
 * @param options Environment, stdin and working directory.
 * @returns The running process; dispose it with `await using`.
 */
export function spawnProgram(args: string[], options: SpawnOptions = {}): ProgramProcess {
  return new ProgramProcess(programArgs(...args), options);
}

/**
 * Starts `deno` with arguments of its own (e.g. `run` a test fixture script),
 * collecting its output like {@linkcode spawnProgram} does.
 *
 * @param denoArgs The arguments of `deno`, e.g. `["run", ...PERMISSION_FLAGS, script]`.
 * @param options Environment, stdin and working directory.
 * @returns The running process; dispose it with `await using`.
 */
export function spawnDeno(denoArgs: string[], options: SpawnOptions = {}): ProgramProcess {
  return new ProgramProcess(denoArgs, options);
}

/**
 * Starts any command, collecting its output like {@linkcode spawnProgram} does.
 *
 * @param command The executable, e.g. `sh`.
 * @param args Its arguments.
 * @param options Environment, stdin and working directory.
 * @returns The running process; dispose it with `await using`.
 */
export function spawnCommand(
  command: string,
  args: string[],
  options: SpawnOptions = {},
): ProgramProcess {
  return new ProgramProcess(args, { ...options, command });
}

/**
 * Waits for the `... listening on ADDRESS` line a server logs on stderr once
 * ready.
 *
 * @returns The address as logged: `unix:/path` or `HOST:PORT`.
 */
export async function waitListening(
  proc: ProgramProcess,
  options: { timeoutMs?: number } = {},
): Promise<string> {
  const match = await proc.waitForLine(/listening on (\S+)/, options);
  return match[1]!;
}

/** Splits a `HOST:PORT` address as logged into its parts. */
export function splitHostPort(address: string): { hostname: string; port: number } {
  const colon = address.lastIndexOf(":");
  return {
    hostname: address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"),
    port: Number(address.slice(colon + 1)),
  };
}

/** What {@linkcode runProgram} returns. */
export interface ProgramResult {
  /** Exit code. */
  code: number;
  /** All of stdout. */
  stdout: string;
  /** All of stderr. */
  stderr: string;
}

/** Options of {@linkcode runProgram}. */
export interface RunOptions {
  /** Text written to stdin, which is then closed. @default {no stdin} */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Milliseconds after which the process is killed. @default {10000} */
  timeoutMs?: number;
}

/**
 * Runs the program to completion.
 *
 * @param args The program's arguments, e.g. `["client", address, "ping"]`.
 * @returns Exit code, stdout and stderr.
 */
export async function runProgram(args: string[], options: RunOptions = {}): Promise<ProgramResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: programArgs(...args),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
    await writer.close().catch(() => {});
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A temporary directory removed (with its contents) when disposed. */
export interface TempDir extends AsyncDisposable {
  /** Its absolute path. */
  readonly path: string;
  /** The absolute path of `name` inside it. */
  join(name: string): string;
}

/**
 * Creates a temporary directory; `await using dir = await tempDir()` removes
 * it at the end of the scope. Its path is short, so Unix socket paths inside
 * it stay under the 108-byte limit.
 */
export async function tempDir(): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "proxy-test-" });
  return {
    path,
    join: (name) => `${path}/${name}`,
    [Symbol.asyncDispose]: async () => {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * A TCP port on 127.0.0.1 that nothing listens on: taken by a listener that
 * is closed again at once, so connecting to it is refused.
 */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
