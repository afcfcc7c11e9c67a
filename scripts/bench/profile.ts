/**
 * A CPU profile of our proxy under load: the proxy run with
 * `deno run --cpu-prof`, loaded like a cell, and its profile summarised by
 * self time per function and per kind of code (the summary is pure).
 *
 * @module
 */

import type { Runtime } from "../../lib/process/self_command.ts";
import { startProxy } from "../../lib/loadtest/server_process.ts";
import { type CellContext, runCell } from "./cell.ts";
import type { Shape } from "./plan.ts";

/** The parts of a `.cpuprofile` used here. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One row of a summary. */
export interface ProfileRow {
  /** Function (or category) name. */
  name: string;
  /** Where it is defined (short), if known. */
  where: string;
  /** Self time in ms. */
  selfMs: number;
  /** Share of all samples, in percent. */
  pct: number;
}

/** What {@linkcode summarizeProfile} returns. */
export interface ProfileSummary {
  /** Profiled wall time in ms. */
  totalMs: number;
  /** Share of the time the thread was busy (not idle), in percent. */
  busyPct: number;
  /** Functions by self time, largest first. */
  functions: ProfileRow[];
  /** Kinds of code by self time, largest first. */
  categories: ProfileRow[];
}

function shortUrl(url: string, root: string): string {
  if (url === "") return "";
  if (url.startsWith(root)) return url.slice(root.length);
  const npm = url.indexOf("/node_modules/");
  if (npm >= 0) return `npm:${url.slice(npm + 14)}`;
  const reg = url.indexOf("registry.npmjs.org/");
  if (reg >= 0) return `npm:${url.slice(reg + 19)}`;
  return url;
}

/** The kind of code a frame belongs to. */
export function categoryOf(functionName: string, url: string, root: string): string {
  if (functionName === "(idle)") return "idle (event loop waiting)";
  if (functionName === "(garbage collector)") return "garbage collector";
  if (functionName === "(program)") return "native (V8/runtime, not JS)";
  if (url.startsWith(root)) {
    const rel = url.slice(root.length);
    return `project: ${rel}`;
  }
  if (url.includes("node_modules") || url.includes("registry.npmjs.org")) {
    const m = /(?:node_modules|registry\.npmjs\.org)\/((?:@[^/]+\/)?[^/@]+)/.exec(url);
    return `npm: ${m?.[1] ?? url}`;
  }
  if (url.startsWith("ext:") || url.startsWith("node:")) {
    return `deno runtime: ${url.replace(/^ext:/, "").split("/")[0]}`;
  }
  if (url === "") return `native: ${functionName || "(anonymous)"}`;
  return `other: ${url}`;
}

/**
 * Self time by function and by category.
 *
 * @param profile A parsed `.cpuprofile`.
 * @param root The project's file URL prefix (e.g. `file:///work/main/`), to shorten paths.
 * @param top How many functions to list.
 */
export function summarizeProfile(profile: CpuProfile, root: string, top = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; charge it to sample i.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let total = 0;
  for (const us of selfUs.values()) total += us;
  const fn = new Map<string, ProfileRow>();
  const cat = new Map<string, ProfileRow>();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || "(anonymous)";
    const where = url ? `${shortUrl(url, root)}:${lineNumber + 1}` : "";
    const key = `${name} ${where}`;
    const row = fn.get(key) ?? { name, where, selfMs: 0, pct: 0 };
    row.selfMs += us / 1000;
    fn.set(key, row);
    const c = categoryOf(functionName, url, root);
    const crow = cat.get(c) ?? { name: c, where: "", selfMs: 0, pct: 0 };
    crow.selfMs += us / 1000;
    cat.set(c, crow);
    if (functionName === "(idle)") idle += us;
  }
  const finish = (rows: ProfileRow[]) =>
    rows.map((r) => ({ ...r, pct: total > 0 ? (100 * r.selfMs * 1000) / total : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs);
  return {
    totalMs: total / 1000,
    busyPct: total > 0 ? (100 * (total - idle)) / total : 0,
    functions: finish([...fn.values()]).slice(0, top),
    categories: finish([...cat.values()]),
  };
}

/** A profile of the proxy at one shape. */
export interface ProfileResult {
  shape: Shape;
  summary: ProfileSummary;
  /** Requests/s while profiled. */
  rps: number;
}

/**
 * Loads a proxy started with `--cpu-prof` with echoes at `shape` and
 * summarises where its time went.
 *
 * @param ctx The cells' context; its `dir` receives the profile.
 * @param shape The load's shape.
 * @param root The project's file URL prefix, to shorten paths.
 * @throws {Error} When the proxy wrote no profile.
 */
export async function profileProxy(
  ctx: CellContext,
  shape: Shape,
  root: string,
): Promise<ProfileResult> {
  const profDir = await Deno.makeTempDir({ dir: ctx.dir, prefix: "prof-" });
  const profiled: Runtime = {
    ...ctx.runtime,
    denoFlags: [...ctx.runtime.denoFlags, "--cpu-prof", `--cpu-prof-dir=${profDir}`],
  };
  const proxy = await startProxy({ workers: ctx.options.workers, runtime: profiled });
  let rps = 0;
  try {
    const target = {
      name: "ours",
      label: "",
      address: proxy.address,
      frontPids: [],
      workerPids: [],
    };
    const cell = await runCell(ctx, target, shape, "echo");
    rps = cell.report?.rps ?? 0;
  } finally {
    await proxy.stop();
  }
  const files = [...Deno.readDirSync(profDir)].filter((f) => f.name.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error(`Cannot profile: no .cpuprofile in ${profDir}`);
  const profile = JSON.parse(await Deno.readTextFile(`${profDir}/${files[0]!.name}`)) as CpuProfile;
  return { shape, summary: summarizeProfile(profile, root, 18), rps };
}
