/**
 * Facts about the machine and the software, for the report's header.
 *
 * @module
 */

import { sh } from "./provision.ts";

/** The machine's facts, as the report prints them. */
export interface MachineInfo {
  /** ISO date and time of the run's end. */
  date: string;
  nproc: string;
  cpu: string;
  memory: string;
  kernel: string;
  /** Load average when the run started. */
  loadBefore: string;
  /** Load average when the run ended. */
  load: string;
  deno: string;
  haproxy: string;
  nginx: string;
  /** The checkout's commit, `+ changes` when it has uncommitted ones; `unknown` outside git. */
  commit: string;
}

/** The load average (1, 5, 15 min). */
export async function loadAverage(): Promise<string> {
  return (await sh("cut -d' ' -f1-3 /proc/loadavg")).out;
}

/**
 * Reads the machine's facts now.
 *
 * @param loadBefore The load average taken when the run started.
 */
export async function machineInfo(loadBefore: string): Promise<MachineInfo> {
  const cpu = (await sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")).out.trim() ||
    "unknown";
  const mem =
    (await sh("grep MemTotal /proc/meminfo | awk '{printf \"%.1f GiB\", $2/1048576}'")).out;
  const haproxy = (await sh("haproxy -v | head -1")).out;
  const nginx = (await sh("nginx -v 2>&1")).out;
  const root = new URL("../../", import.meta.url).pathname;
  const rev = await sh(`git -C '${root}' rev-parse --short HEAD`);
  const dirty = (await sh(`git -C '${root}' status --porcelain --untracked-files=no`)).out !== "";
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    nproc: String(navigator.hardwareConcurrency),
    cpu,
    memory: mem,
    kernel: (await sh("uname -sr")).out,
    loadBefore,
    load: await loadAverage(),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    haproxy: haproxy || "not installed",
    nginx: nginx.startsWith("nginx version") ? nginx : "not installed",
    commit: rev.ok && rev.out ? `${rev.out}${dirty ? " + changes" : ""}` : "unknown",
  };
}
