/**
 * Spawning a child process with captured output: its exit status and its
 * last lines, for the pool's workers and any other child.
 *
 * @module
 */

import type { CommandLine } from "./self_command.ts";

/** How a process ended. */
export interface ExitStatus {
  /** Exit code (128 + n when killed by signal n). */
  code: number;
  /** The signal that killed it, if any. */
  signal: string | null;
}

/** What the pool needs of a process; {@linkcode spawnWorkerProcess} makes the real one. */
export interface WorkerProcessHandle {
  /** Its pid. */
  readonly pid: number;
  /** Resolves when it has exited. */
  readonly status: Promise<ExitStatus>;
  /** Sends a signal; ignored once exited. */
  kill(signal?: Deno.Signal): void;
  /** Closes its stdin: a worker started with `--parent-watch` then exits. */
  closeStdin(): void;
  /** Its last lines of output, oldest first. */
  lastLines(): string[];
}

/** Starts a process; injectable so pool tests can run without processes. */
export type SpawnFn = (line: CommandLine, onLine: (line: string) => void) => WorkerProcessHandle;

/** Lines of output kept per worker for error reports. */
export const KEPT_LINES = 20;
const MAX_LINE = 4096;

/**
 * Spawns a real process with piped stdin (never written: it closes when we
 * die) and captured stdout and stderr.
 *
 * @throws {Deno.errors.NotFound} When the executable does not exist.
 */
export function spawnWorkerProcess(
  line: CommandLine,
  onLine: (line: string) => void,
): WorkerProcessHandle {
  const child = new Deno.Command(line.cmd, {
    args: line.args,
    env: line.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kept: string[] = [];
  const keep = (text: string) => {
    if (kept.length >= KEPT_LINES) kept.shift();
    kept.push(text);
    onLine(text);
  };
  const stdin = child.stdin.getWriter();
  const outputs = Promise.all([readLines(child.stdout, keep), readLines(child.stderr, keep)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    // Output the process wrote just before dying belongs in its report.
    await Promise.race([outputs, new Promise((r) => setTimeout(r, 200))]);
    stdin.close().catch(() => {});
    return { code: s.code, signal: s.signal };
  });
  return {
    pid: child.pid,
    status,
    kill(signal: Deno.Signal = "SIGTERM") {
      if (exited) return;
      try {
        child.kill(signal);
      } catch {
        // exited meanwhile
      }
    },
    closeStdin() {
      stdin.close().catch(() => {});
    },
    lastLines: () => [...kept],
  };
}

/**
 * Splits a byte stream into lines (without `\n` or `\r\n`), each capped at
 * 4096 characters, until the stream ends or breaks.
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  try {
    for await (const chunk of stream) {
      partial += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const end = nl > 0 && partial[nl - 1] === "\r" ? nl - 1 : nl;
        onLine(partial.slice(0, Math.min(end, MAX_LINE)));
        partial = partial.slice(nl + 1);
      }
      if (partial.length > MAX_LINE) {
        onLine(partial.slice(0, MAX_LINE));
        partial = "";
      }
    }
  } catch {
    // stream torn down with the process
  }
  partial += decoder.decode();
  if (partial) onLine(partial);
}
