/**
 * The benchmark's options and their defaults, read by the flags of
 * `main.ts` and the report.
 *
 * @module
 */

/** What `deno task bench` was asked to do. */
export interface BenchOptions {
  /** Milliseconds of measured load per cell. */
  cell: number;
  /** Runs of each cell; the report gives medians. */
  repeat: number;
  /** Milliseconds of warm-up per cell. */
  warmup: number;
  /** Workers behind each proxy. */
  workers: number;
  /** Shapes of the echo cells, `CONNECTIONSxPIPELINE` comma-separated. */
  shapes: string;
  /** Echo payload size in bytes. */
  payload: number;
  /** Run the CPU-bound cells (`spin`). */
  work: boolean;
  /** Shapes of the CPU-bound cells. */
  workShapes: string;
  /** Microseconds of CPU per request in the CPU-bound cells. */
  workUs: number;
  /** Run the mixed-cost cells (echoes with a share of `spin`). */
  mixed: boolean;
  /** Shapes of the mixed-cost cells. */
  mixedShapes: string;
  /**
   * What a slow request does in the mixed-cost cells: `spin` uses the CPU,
   * `block` holds the worker without it (a slow synchronous call).
   */
  mixedMethod: "spin" | "block";
  /** Microseconds a slow request takes in the mixed-cost cells. */
  mixedUs: number;
  /** Percent of slow requests in the mixed-cost cells. */
  mixedPct: number;
  /**
   * Requests per second of the mixed-cost cells, sent on a fixed schedule
   * (open loop); 0: closed loop. Below the workers' capacity, what a request
   * waits for is the balancer's doing, not a saturated pool's queue.
   */
  mixedRate: number;
  /** HAProxy's `nbthread`. */
  haproxyThreads: number;
  /** Include nginx (when it and its stream module are available). */
  nginx: boolean;
  /** Include the Deno byte relay (`deno_relay.ts`): Deno's floor for the same traffic. */
  denoRelay: boolean;
  /** `apt-get install` HAProxy and nginx when missing. */
  install: boolean;
  /** Profile our proxy under load at the end. */
  profile: boolean;
  /** Count each front end's system calls per request (`perf stat`), at these shapes; "" for none. */
  syscallShapes: string;
  /** Shapes at which our proxy is CPU-profiled (with `profile`). */
  profileShapes: string;
  /** Draw the latency-by-percentile charts (SVG next to the Markdown). */
  charts: boolean;
  /** Where to write the Markdown; default `bench/<date>-results.md`. */
  out?: string;
}

/** The defaults of {@linkcode BenchOptions}, one table for the flags and the report. */
export const BENCH_DEFAULTS: Readonly<Omit<BenchOptions, "out">> = Object.freeze({
  cell: 3_000,
  repeat: 2,
  warmup: 500,
  workers: navigator.hardwareConcurrency || 1,
  shapes: "1x1,16x1,64x1,1x16,16x16,64x16",
  payload: 64,
  work: true,
  workShapes: "1x16,3x16",
  workUs: 200,
  mixed: true,
  mixedShapes: "16x1,16x16",
  mixedMethod: "spin",
  mixedUs: 5_000,
  mixedPct: 5,
  mixedRate: 3000,
  haproxyThreads: 1,
  nginx: true,
  denoRelay: true,
  install: true,
  profile: true,
  syscallShapes: "1x1,1x16,16x16",
  profileShapes: "16x1,16x16",
  charts: true,
});
