/**
 * A dispatcher over local worker processes, assembled from the layers: a
 * supervisor that owns the processes, a least-request balancer, and the
 * dispatcher. What `proxy serve` runs when it has no upstreams.
 *
 * @module
 */

import { MAX_ENVELOPE_HEAD } from "../protocol/envelope.ts";
import type { CommandLine } from "../process/self_command.ts";
import type { SpawnFn } from "../process/spawn.ts";
import { resolveServeSettings, type ServeSettings } from "../options/serve_options.ts";
import { LeastRequestBalancer } from "./balancers/least_request.ts";
import { Dispatcher } from "./dispatcher.ts";
import { Supervisor } from "./supervisor.ts";

/** Options of {@linkcode createPool}: any `proxy serve` option, and how to start a worker. */
export interface PoolOptions extends Partial<ServeSettings> {
  /** Directory for the worker sockets (private to the proxy). */
  socketDir: string;
  /** The command line of a worker, given its socket path. */
  commandLine: (socket: string) => CommandLine;
  /** Starts processes; tests inject fakes. */
  spawn?: SpawnFn;
  /** Connects to a worker socket; tests inject fakes. */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Randomness for the balancer and jitter. @default {Math.random} */
  random?: () => number;
}

/**
 * Builds a dispatcher over a supervised pool of local workers (not started:
 * call `start()`).
 *
 * @throws {OptionError} For an option out of range.
 */
export function createPool(options: PoolOptions): Dispatcher {
  const { socketDir, commandLine, spawn, connect, random, ...given } = options;
  const s = resolveServeSettings(given);
  const supervisor = new Supervisor({
    mode: s.pool,
    workers: s.workers,
    minWorkers: s.minWorkers,
    maxWorkers: s.maxWorkers,
    minSpare: s.minSpare,
    maxSpare: s.maxSpare,
    idleTimeout: s.idleTimeout,
    socketDir,
    commandLine,
    maxInFlightPerWorker: s.maxInFlightPerWorker,
    startTimeout: s.workerStartTimeout,
    readyCheck: s.readyCheck,
    shutdownGrace: s.shutdownGrace,
    workerWriteLimit: s.workerWriteLimit,
    // A worker's answer may carry what a client's request could, under the
    // proxy's msgid (up to 9 bytes where the client's took 1).
    maxMessageSize: s.maxMessageSize + MAX_ENVELOPE_HEAD,
    errorFormat: s.errorFormat,
    maxRequests: s.maxRequests,
    maxRequestsJitter: s.maxRequestsJitter,
    maxMemoryMb: s.maxMemory,
    memoryCheckInterval: s.memoryCheckInterval,
    crashLoopThreshold: s.crashLoopThreshold,
    crashLoopWindow: s.crashLoopWindow,
    crashLoopCooldown: s.crashLoopCooldown,
    ...(spawn ? { spawn } : {}),
    ...(connect ? { connect } : {}),
    ...(random ? { random } : {}),
  });
  return new Dispatcher({
    set: supervisor,
    balancer: new LeastRequestBalancer(random),
    mode: s.pool,
    queueSize: s.queueSize,
    queueTimeout: s.queueTimeout,
    requestTimeout: s.requestTimeout,
    methodTimeouts: s.methodTimeout,
    killAfter: s.killAfter,
    retry: s.retryAll ? "all" : s.retryIdempotent,
  });
}
