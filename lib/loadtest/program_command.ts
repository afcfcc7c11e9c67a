/**
 * Re-invoking this program (`proxy`) with a subcommand, the way the pool
 * starts its workers: a `deno compile`d binary is run with the arguments
 * as they are; under `deno run`, deno gets `run`, this process's permission
 * and config flags, and the main module first.
 *
 * @module
 */

import { currentRuntime, type Runtime } from "../pool/worker_command.ts";

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
 * @param runtime How to re-invoke the program. Scripts that are not the
 * program's entry point pass `{ ...currentRuntime(), mainModule }`.
 * @default {currentRuntime()}
 * @returns The executable and its arguments.
 *
 * @example Under `deno run`
 * ```ts
 * import { programCommandLine } from "./program_command.ts";
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
