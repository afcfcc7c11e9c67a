/**
 * CPU time from /proc: the machine's busy ticks and those of given
 * processes, sampled before and after a cell, turned into microseconds of
 * CPU per request.
 *
 * @module
 */

/** Kernel clock ticks per second (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

/** One reading of /proc. */
export interface CpuSample {
  /** `performance.now()` when read. */
  at: number;
  /** The machine's busy ticks (all but idle and iowait). */
  busy: number;
  /** The machine's ticks. */
  total: number;
  /** utime + stime ticks by pid. */
  pids: Map<number, number>;
  /** stime ticks by pid. */
  sys: Map<number, number>;
}

/** CPU time spent during a cell, in microseconds per request sent. */
export interface CpuUse {
  /** The front end's processes (0 for direct). */
  front: number;
  /** Of `front`, the time in the kernel (system time). */
  frontSys: number;
  /** The workers. */
  workers: number;
  /** Everything else that ran: the generator, mostly. */
  rest: number;
  /** Cores busy on the whole machine, on average. */
  busyCores: number;
}

/** The processes a cell's CPU is charged to. */
export interface CpuGroups {
  frontPids: readonly number[];
  workerPids: readonly number[];
}

/**
 * Parses `/proc/stat` followed by `/proc/PID/stat` lines.
 *
 * @param text Their concatenation.
 * @param at When they were read.
 */
export function parseCpuSample(text: string, at: number): CpuSample {
  const lines = text.split("\n");
  const cpu = (lines[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const busy = total - (cpu[3] ?? 0) - (cpu[4] ?? 0); // minus idle and iowait
  const pids = new Map<number, number>();
  const sys = new Map<number, number>();
  for (const line of lines) {
    // The command name may hold spaces and parentheses: the fields follow its last ")".
    const m = /^(\d+) \(.*\) (.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.split(" ");
    pids.set(Number(m[1]), Number(f[11]) + Number(f[12])); // utime + stime
    sys.set(Number(m[1]), Number(f[12]));
  }
  return { at, busy, total, pids, sys };
}

/**
 * Reads the CPU ticks of the machine and of `pids`, through `cat`: Deno
 * lets a process read another's /proc entry only with --allow-all.
 */
export async function sampleCpu(pids: readonly number[]): Promise<CpuSample> {
  const files = ["/proc/stat", ...pids.map((p) => `/proc/${p}/stat`)];
  const out = await new Deno.Command("cat", { args: files, stdout: "piped", stderr: "null" })
    .output();
  return parseCpuSample(new TextDecoder().decode(out.stdout), performance.now());
}

/**
 * The CPU spent between two samples, per request sent.
 *
 * @param a The sample before.
 * @param b The sample after.
 * @param groups Whose time is the front end's and whose the workers'.
 * @param sent Requests sent in between.
 */
export function cpuUse(a: CpuSample, b: CpuSample, groups: CpuGroups, sent: number): CpuUse {
  const us = (ticks: number) => (ticks * 1e6) / CLK_TCK;
  const delta = (m: "pids" | "sys", pids: readonly number[]) =>
    pids.reduce((t, p) => t + ((b[m].get(p) ?? 0) - (a[m].get(p) ?? 0)), 0);
  const front = us(delta("pids", groups.frontPids));
  const frontSys = us(delta("sys", groups.frontPids));
  const workers = us(delta("pids", groups.workerPids));
  const all = us(b.busy - a.busy);
  const n = Math.max(1, sent);
  const seconds = (b.at - a.at) / 1000;
  return {
    front: front / n,
    frontSys: frontSys / n,
    workers: workers / n,
    rest: Math.max(0, all - front - workers) / n,
    busyCores: seconds > 0 ? (b.busy - a.busy) / CLK_TCK / seconds : 0,
  };
}
