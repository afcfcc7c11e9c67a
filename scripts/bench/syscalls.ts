/**
 * System calls per request of each front end, counted by the kernel's
 * tracepoints with `perf stat` (Debian's `linux-perf`) while a cell runs.
 * Unlike `strace`, which stops the process at every call and so changes how
 * much it batches, `perf stat` counts in the kernel at little cost. The
 * parsing and the table are pure.
 *
 * @module
 */

import { type CellContext, runCell } from "./cell.ts";
import type { Shape } from "./plan.ts";
import type { Target } from "./targets.ts";

/** The calls counted one by one; the rest are in `total` only. */
export const SYSCALLS = [
  "read",
  "readv",
  "recvfrom",
  "recvmsg",
  "write",
  "writev",
  "sendto",
  "sendmsg",
  "splice",
  "epoll_wait",
  "epoll_pwait",
  "epoll_ctl",
  "futex",
  "io_uring_enter",
] as const;

const TOTAL_EVENT = "raw_syscalls:sys_enter";

/** The `-e` list of `perf stat`. */
export function perfEvents(): string {
  return [TOTAL_EVENT, ...SYSCALLS.map((s) => `syscalls:sys_enter_${s}`)].join(",");
}

/**
 * Reads `perf stat -x ,` output: one `count,unit,event,...` line per event.
 *
 * @returns Counts by syscall name, and `total`.
 */
export function parsePerfStat(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    const fields = line.split(",");
    if (fields.length < 3) continue;
    const n = Number(fields[0]);
    const event = fields[2]!.trim();
    if (!Number.isFinite(n)) continue; // "<not counted>", "<not supported>"
    if (event === TOTAL_EVENT) counts.set("total", n);
    else if (event.startsWith("syscalls:sys_enter_")) {
      counts.set(event.slice("syscalls:sys_enter_".length), n);
    }
  }
  return counts;
}

/** Syscalls of one front end at one shape. */
export interface SyscallResult {
  target: string;
  shape: Shape;
  /** Requests answered in the counted cell. */
  requests: number;
  /** Calls by name (`total`: every syscall). */
  counts: Map<string, number>;
}

/** Column groups of the table: the name, and the syscalls summed into it. */
export const SYSCALL_COLUMNS: readonly [string, readonly string[]][] = [
  ["reads", ["read", "readv", "recvfrom", "recvmsg"]],
  ["writes", ["write", "writev", "sendto", "sendmsg", "splice"]],
  ["epoll", ["epoll_wait", "epoll_pwait", "epoll_ctl"]],
  ["futex", ["futex"]],
];

/** The Markdown table of syscalls per request. */
export function syscallTable(results: readonly SyscallResult[]): string[] {
  const head = ["connections x pipeline", "target", "all", ...SYSCALL_COLUMNS.map(([n]) => n)];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| --- | --- | ${head.slice(2).map(() => "---:").join(" | ")} |`,
  ];
  const per = (n: number, r: SyscallResult) => r.requests > 0 ? (n / r.requests).toFixed(3) : "-";
  for (const r of results) {
    const cells = SYSCALL_COLUMNS.map(([, names]) =>
      per(names.reduce((n, s) => n + (r.counts.get(s) ?? 0), 0), r)
    );
    lines.push(
      `| ${r.shape.connections} x ${r.shape.pipeline} | ${r.target} | ${
        per(r.counts.get("total") ?? 0, r)
      } | ${cells.join(" | ")} |`,
    );
  }
  return lines;
}

/** True when `perf stat` can count syscall tracepoints here. */
export async function perfAvailable(): Promise<boolean> {
  try {
    const out = await new Deno.Command("perf", {
      args: ["stat", "-x", ",", "-e", TOTAL_EVENT, "true"],
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success && parsePerfStat(new TextDecoder().decode(out.stderr)).has("total");
  } catch {
    return false;
  }
}

/**
 * Runs one echo cell against `target` with `perf stat` counting the system
 * calls of its front-end processes (every thread).
 *
 * @throws {Error} When the target has no front-end process or perf fails.
 */
export async function countSyscalls(
  ctx: CellContext,
  target: Target,
  shape: Shape,
): Promise<SyscallResult> {
  if (target.frontPids.length === 0) {
    throw new Error(`Cannot count syscalls of ${target.name}: no pid`);
  }
  const perf = new Deno.Command("perf", {
    args: ["stat", "-x", ",", "-e", perfEvents(), "-p", target.frontPids.join(",")],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(perf.stderr).text();
  let requests = 0;
  try {
    const run = await runCell(ctx, target, shape, "echo");
    if (run.error) throw new Error(`Cannot count syscalls of ${target.name}: ${run.error}`);
    // Warm-up requests are counted too: perf ran all along.
    requests = run.report!.sent;
  } finally {
    perf.kill("SIGINT");
  }
  await perf.status;
  return { target: target.name, shape, requests, counts: parsePerfStat(await stderr) };
}
