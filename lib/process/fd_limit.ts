/**
 * The process's limit on open files (RLIMIT_NOFILE), which bounds how many
 * client connections, worker sockets and pipes the proxy can hold at once.
 *
 * @module
 */

/**
 * Reads the soft limit on open files: from `/proc/self/limits` when Deno
 * lets us (it asks `--allow-all` for /proc), else from `sh -c "ulimit -n"`,
 * which a child inherits unchanged.
 *
 * @returns The limit, or null when unknown (or unlimited).
 */
export async function readOpenFileLimit(): Promise<number | null> {
  try {
    const text = await Deno.readTextFile("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (m) return m[1] === "unlimited" ? null : Number(m[1]);
  } catch {
    // not allowed, or not Linux
  }
  try {
    const out = await new Deno.Command("sh", { args: ["-c", "ulimit -n"], stderr: "null" })
      .output();
    const text = new TextDecoder().decode(out.stdout).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** File descriptors a worker costs the proxy: its socket and its three pipes. */
export const FDS_PER_WORKER = 4;

/** Descriptors kept for everything else: listeners, logs, ps runs, DNS. */
export const FD_RESERVE = 64;

/**
 * The most client connections that fit under `limit` with room kept for
 * `workers` workers and the reserve.
 *
 * @example Usage
 * ```ts
 * import { connectionsWithin } from "./fd_limit.ts";
 * console.log(connectionsWithin(1024, 8)); // 928
 * ```
 */
export function connectionsWithin(limit: number, workers: number): number {
  return Math.max(1, limit - FD_RESERVE - workers * FDS_PER_WORKER);
}
