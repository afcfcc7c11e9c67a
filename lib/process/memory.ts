/**
 * Reading the resident memory of worker processes.
 *
 * @module
 */

/**
 * Resident memory of processes in MiB. Deno lets only `--allow-all` read
 * another process's /proc entry, so with narrower permissions this asks
 * `ps` (one run for all pids). Unknown pids are left out.
 */
export async function readRssMb(pids: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  try {
    for (const pid of pids) {
      const m = /VmRSS:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${pid}/status`));
      if (m) out.set(pid, Math.round(Number(m[1]) / 102.4) / 10);
    }
    return out;
  } catch {
    // not allowed (or not Linux): fall back to ps
  }
  try {
    const { stdout } = await new Deno.Command("ps", {
      args: ["-o", "pid=,rss=", "-p", pids.join(",")],
    }).output();
    for (const line of new TextDecoder().decode(stdout).split("\n")) {
      const [pid, kb] = line.trim().split(/\s+/).map(Number);
      if (pid && kb !== undefined && Number.isFinite(kb)) out.set(pid, Math.round(kb / 102.4) / 10);
    }
  } catch {
    // no ps either: memory stays unknown
  }
  return out;
}
