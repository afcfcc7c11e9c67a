/**
 * Load testing: the generator, the chaos, the report, and `proxy test` as a
 * whole.
 *
 * @module
 */
export * from "./latency_histogram.ts";
export * from "./live_line.ts";
export * from "./load_generator.ts";
export * from "./percentile_distribution.ts";
export * from "./report.ts";
export * from "./request_mix.ts";
export * from "./run_load_test.ts";
export * from "./server_process.ts";
export * from "./worker_killer.ts";
