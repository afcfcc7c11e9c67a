/**
 * The command line that starts a worker.
 *
 * By default a worker is this very program re-invoked as
 * `backend --socket PATH --parent-watch`. How to re-invoke it depends on how
 * we run: a `deno compile`d binary is the program itself, while under
 * `deno run` the executable is deno, so `run`, the permission flags and the
 * main module come first. `--worker-cmd` replaces all of that with any
 * program that serves MessagePack-RPC on the socket it is given.
 *
 * @module
 */

/** Environment variable that carries the worker's socket path. */
export const WORKER_SOCKET_ENV = "PROXY_WORKER_SOCKET";

/** Placeholder in a custom worker command, replaced with the socket path. */
export const SOCKET_PLACEHOLDER = "{socket}";

/** A program to spawn: executable, arguments, extra environment. */
export interface CommandLine {
  /** The executable. */
  cmd: string;
  /** Its arguments. */
  args: string[];
  /** Variables added to the inherited environment. */
  env: Record<string, string>;
}

/** How this process runs; injectable so both modes can be tested anywhere. */
export interface Runtime {
  /** `Deno.build.standalone`: true in a `deno compile`d binary. */
  standalone: boolean;
  /** `Deno.execPath()`: the binary, or the deno CLI under `deno run`. */
  execPath: string;
  /** `Deno.mainModule`: the entry module under `deno run`. */
  mainModule: string;
  /** Flags to give deno before the module: permissions, config. */
  denoFlags: string[];
}

/** Options of {@linkcode workerCommandLine}. */
export interface WorkerCommandOptions {
  /** The socket path the worker must listen on. */
  socket: string;
  /**
   * A custom worker command (split on whitespace, quotes respected), with
   * `{socket}` replaced by the socket path. When absent, this program is
   * re-invoked as a `backend`.
   */
  workerCmd?: string;
  /** Extra arguments for the built-in backend (e.g. `--handler x.ts`). */
  backendArgs?: string[];
  /** How this process runs. @default {currentRuntime()} */
  runtime?: Runtime;
}

const PERMISSIONS = ["read", "write", "net", "env", "run", "sys", "ffi", "import"] as const;

/**
 * Describes the running process: how a worker re-invokes this program.
 * Under `deno run`, the worker gets each permission this process was granted
 * in full, and the project's `deno.json` (for its import map and lock file).
 */
export function currentRuntime(): Runtime {
  const denoFlags = ["--quiet", "--no-prompt"];
  if (!Deno.build.standalone) {
    for (const name of PERMISSIONS) {
      try {
        if (Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted") {
          denoFlags.push(`--allow-${name}`);
        }
      } catch {
        // a permission name this Deno does not know
      }
    }
    const config = new URL("../../deno.json", import.meta.url);
    if (config.protocol === "file:") {
      denoFlags.push(`--config=${decodeURIComponent(config.pathname)}`);
    }
  }
  return {
    standalone: Deno.build.standalone,
    execPath: Deno.execPath(),
    mainModule: Deno.mainModule,
    denoFlags,
  };
}

/**
 * Builds the command line of one worker.
 *
 * @example Under `deno run`
 * ```ts
 * import { workerCommandLine } from "./worker_command.ts";
 * const line = workerCommandLine({
 *   socket: "/tmp/p/w1.sock",
 *   runtime: { standalone: false, execPath: "/usr/bin/deno", mainModule: "file:///app/cli/main.ts", denoFlags: ["--allow-net"] },
 * });
 * console.log(line.args); // ["run", "--allow-net", "file:///app/cli/main.ts", "backend", "--socket", "/tmp/p/w1.sock", "--parent-watch"]
 * ```
 */
export function workerCommandLine(options: WorkerCommandOptions): CommandLine {
  const env = { [WORKER_SOCKET_ENV]: options.socket };
  if (options.workerCmd !== undefined) {
    const words = splitCommand(options.workerCmd).map((w) =>
      w.replaceAll(SOCKET_PLACEHOLDER, options.socket)
    );
    const [cmd, ...args] = words;
    if (cmd === undefined) throw new TypeError("Cannot start worker: --worker-cmd is empty");
    return { cmd, args, env };
  }
  const runtime = options.runtime ?? currentRuntime();
  const backend = [
    "backend",
    "--socket",
    options.socket,
    "--parent-watch",
    ...(options.backendArgs ?? []),
  ];
  if (runtime.standalone) return { cmd: runtime.execPath, args: backend, env };
  return {
    cmd: runtime.execPath,
    args: ["run", ...runtime.denoFlags, runtime.mainModule, ...backend],
    env,
  };
}

/**
 * Splits a command into words like a shell would for simple cases: spaces
 * separate, single or double quotes group, backslash escapes.
 *
 * @throws {SyntaxError} On an unterminated quote.
 */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new SyntaxError(`Cannot parse command: unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}
