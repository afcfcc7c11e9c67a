/**
 * Re-invoking this program (`proxy`) with a subcommand, written once for the
 * pool's workers, the load tester's proxy, the benchmarks and the tests.
 *
 * How to re-invoke depends on how we run (see {@linkcode LaunchMode}): a
 * `deno compile`d binary is the program itself; under `deno run` (directly,
 * through `deno task`, or through the npm package's `bin`, which runs the
 * `deno` binary of its dependency on the bundled program) the executable is
 * deno, so `run`, the permission and config flags and the main module come
 * first. `--worker-cmd` replaces all of that with any
 * program that serves MessagePack-RPC on the socket it is given.
 *
 * @module
 */

import { builtinWorkerRuntime, type WorkerPermissions } from "./worker_permissions.ts";

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

/** How this process runs; injectable so every mode can be tested anywhere. */
export interface Runtime {
  /** `Deno.build.standalone`: true in a `deno compile`d binary. */
  standalone: boolean;
  /** `Deno.execPath()`: the binary, or the deno CLI under `deno run`. */
  execPath: string;
  /** The entry module that `deno run` re-runs (unused in a compiled binary). */
  mainModule: string;
  /** Flags to give deno before the module: permissions, config. */
  denoFlags: string[];
}

/**
 * How this program was started:
 * - `"compiled"`: a `deno compile`d binary, which is the program itself;
 * - `"source"`: `deno run cli/main.ts` (directly or through `deno task`),
 *   whose imports resolve through the project's `deno.json`;
 * - `"bundle"`: one JavaScript file holding every module, as the npm
 *   package's `bin` runs it on the binary of its `deno` dependency.
 */
export type LaunchMode = "compiled" | "source" | "bundle";

/** What {@linkcode runtimeFor} needs to know about the running process. */
export interface ProcessFacts {
  /** `Deno.build.standalone`. */
  standalone: boolean;
  /** `Deno.execPath()`. */
  execPath: string;
  /** `Deno.mainModule`: the module deno was asked to run. */
  mainModule: string;
  /** The URL of this module (`import.meta.url`). */
  moduleUrl: string;
  /** Permissions granted in full (`"net"`, `"read"`, ...). */
  granted: readonly string[];
  /** True when V8's `gc()` is exposed (`--v8-flags=--expose-gc`). */
  gcExposed: boolean;
  /** True when a file exists at `path`. */
  fileExists: (path: string) => boolean;
}

const PERMISSIONS = ["read", "write", "net", "env", "run", "sys", "ffi", "import"] as const;

/**
 * How the process described by `facts` was started. In a bundle this code
 * lives in the main module itself; from source it never does (the entry is
 * `cli/main.ts`, a test or a script).
 */
export function launchMode(facts: ProcessFacts): LaunchMode {
  if (facts.standalone) return "compiled";
  return facts.moduleUrl === facts.mainModule ? "bundle" : "source";
}

/**
 * How a child re-invokes the program that `facts` describes: each permission
 * granted in full, `gc()` exposed when it is here, and what resolves its
 * imports: from source, the project's `deno.json` (import map and lock file)
 * and `cli/main.ts` as the entry, whoever called; in a bundle, no config at
 * all (one would be discovered from the working directory otherwise) and the
 * bundle itself.
 *
 * @param facts The process, as {@linkcode currentRuntime} reads it.
 * @param mainModule The entry module to re-invoke. @default {the program's entry}
 * @returns The runtime.
 *
 * @example Under the npm package's `bin`
 * ```ts
 * import { runtimeFor } from "./self_command.ts";
 * const bundle = "file:///usr/lib/node_modules/proxy/proxy.js";
 * const runtime = runtimeFor({
 *   standalone: false,
 *   execPath: "/usr/lib/node_modules/proxy/node_modules/deno/deno",
 *   mainModule: bundle,
 *   moduleUrl: bundle,
 *   granted: ["net"],
 *   gcExposed: true,
 *   fileExists: () => false,
 * });
 * console.log(runtime.denoFlags); // ["--quiet", "--no-prompt", "--v8-flags=--expose-gc", "--allow-net", "--no-config"]
 * ```
 */
export function runtimeFor(facts: ProcessFacts, mainModule?: string): Runtime {
  const mode = launchMode(facts);
  const denoFlags = ["--quiet", "--no-prompt"];
  const runtime = (main: string): Runtime => ({
    standalone: mode === "compiled",
    execPath: facts.execPath,
    mainModule: mainModule ?? main,
    denoFlags,
  });
  if (mode === "compiled") return runtime(facts.mainModule);
  // The proxy frees the memory of closed connections with it (see ProxyServer).
  if (facts.gcExposed) denoFlags.push("--v8-flags=--expose-gc");
  for (const name of facts.granted) denoFlags.push(`--allow-${name}`);
  if (mode === "bundle") {
    denoFlags.push("--no-config");
    return runtime(facts.mainModule);
  }
  const config = new URL("../../deno.json", facts.moduleUrl);
  if (config.protocol === "file:") {
    const path = decodeURIComponent(config.pathname);
    if (facts.fileExists(path)) denoFlags.push(`--config=${path}`);
  }
  return runtime(new URL("../../cli/main.ts", facts.moduleUrl).href);
}

/** Reads {@linkcode ProcessFacts} from this process. */
export function processFacts(): ProcessFacts {
  const granted = Deno.build.standalone ? [] : PERMISSIONS.filter((name) => {
    try {
      return Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted";
    } catch {
      return false; // a permission name this Deno does not know
    }
  });
  return {
    standalone: Deno.build.standalone,
    execPath: Deno.execPath(),
    mainModule: Deno.mainModule,
    moduleUrl: import.meta.url,
    granted,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === "function",
    fileExists: (path) => {
      try {
        Deno.statSync(path);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/**
 * Describes the running process: how a child re-invokes this program (see
 * {@linkcode runtimeFor}).
 *
 * @param mainModule The entry module to re-invoke. @default {the program's entry}
 */
export function currentRuntime(mainModule?: string): Runtime {
  return runtimeFor(processFacts(), mainModule);
}

/** An executable and its arguments. */
export interface ProgramCommandLine {
  /** The executable. */
  cmd: string;
  /** Its arguments. */
  args: string[];
}

/**
 * The command line that runs this program with `args`.
 *
 * @param args The subcommand and its flags, e.g. `["serve", "--port", "0"]`.
 * @param runtime How to re-invoke the program. @default {currentRuntime()}
 * @returns The executable and its arguments.
 *
 * @example Under `deno run`
 * ```ts
 * import { programCommandLine } from "./self_command.ts";
 * const line = programCommandLine(["serve", "--port", "0"], {
 *   standalone: false,
 *   execPath: "/usr/bin/deno",
 *   mainModule: "file:///app/cli/main.ts",
 *   denoFlags: ["--allow-net"],
 * });
 * console.log(line.args); // ["run", "--allow-net", "file:///app/cli/main.ts", "serve", "--port", "0"]
 * ```
 */
export function programCommandLine(
  args: readonly string[],
  runtime: Runtime = currentRuntime(),
): ProgramCommandLine {
  if (runtime.standalone) return { cmd: runtime.execPath, args: [...args] };
  return {
    cmd: runtime.execPath,
    args: ["run", ...runtime.denoFlags, runtime.mainModule, ...args],
  };
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
  /**
   * When given (the proxy always gives it), a built-in worker under
   * `deno run` gets only these permissions, not the proxy's.
   */
  permissions?: WorkerPermissions;
  /** How this process runs. @default {currentRuntime()} */
  runtime?: Runtime;
}

/**
 * Builds the command line of one worker: this program as
 * `backend --socket PATH --parent-watch ...`, or the `--worker-cmd`.
 *
 * @example Compiled
 * ```ts
 * import { workerCommandLine } from "./self_command.ts";
 * const line = workerCommandLine({
 *   socket: "/tmp/p/w1.sock",
 *   runtime: { standalone: true, execPath: "/usr/local/bin/proxy", mainModule: "", denoFlags: [] },
 * });
 * console.log(line.cmd, line.args); // /usr/local/bin/proxy ["backend", "--socket", "/tmp/p/w1.sock", "--parent-watch"]
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
  const runtime = options.permissions === undefined ? options.runtime : builtinWorkerRuntime(
    options.runtime ?? currentRuntime(),
    options.socket,
    options.permissions,
  );
  const line = programCommandLine(
    ["backend", "--socket", options.socket, "--parent-watch", ...(options.backendArgs ?? [])],
    runtime,
  );
  return { ...line, env };
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

/** Options of {@linkcode spawnProgram}. */
export interface SpawnProgramOptions {
  /** How to re-invoke the program. @default {currentRuntime()} */
  runtime?: Runtime;
  /** @default {"null"} */
  stdin?: "piped" | "inherit" | "null";
  /** @default {"null"} */
  stdout?: "piped" | "inherit" | "null";
  /** @default {"piped"} */
  stderr?: "piped" | "inherit" | "null";
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
}

/**
 * Starts this program with `args` as a child process.
 *
 * @param args The subcommand and its flags.
 * @param options Runtime and stdio.
 * @returns The child; the caller must end it.
 * @throws {Deno.errors.NotFound} When the executable is missing.
 */
export function spawnProgram(
  args: readonly string[],
  options: SpawnProgramOptions = {},
): Deno.ChildProcess {
  const line = programCommandLine(args, options.runtime);
  return new Deno.Command(line.cmd, {
    args: line.args,
    stdin: options.stdin ?? "null",
    stdout: options.stdout ?? "null",
    stderr: options.stderr ?? "piped",
    ...(options.env ? { env: options.env } : {}),
  }).spawn();
}
