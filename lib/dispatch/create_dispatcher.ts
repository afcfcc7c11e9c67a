/**
 * A dispatcher assembled from the layers `proxy serve` asks for: a
 * supervisor of local workers, an upstream set of remote servers, or both as
 * one set; the balancer of `--balance`; and the dispatcher.
 *
 * @module
 */

import { MAX_ENVELOPE_HEAD } from "../protocol/envelope.ts";
import type { Address } from "../net/address.ts";
import { parseAddress } from "../net/address.ts";
import type { CommandLine } from "../process/self_command.ts";
import type { SpawnFn } from "../process/spawn.ts";
import { resolveServeSettings, type ServeSettings } from "../options/serve_options.ts";
import { createBalancer } from "./balancers/create_balancer.ts";
import { CompositeSet } from "./composite_set.ts";
import { dnsResolver, type Resolver } from "./discovery.ts";
import { Dispatcher, type DispatcherOptions } from "./dispatcher.ts";
import type { EndpointSet } from "./endpoint_set.ts";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import { UpstreamSet } from "./upstream_set.ts";
import { parseUpstreamSpec } from "./upstream_spec.ts";

/**
 * Options of {@linkcode createDispatcher}: any `proxy serve` option, and how
 * to start a worker and reach an upstream.
 */
export interface DispatcherFactoryOptions extends Partial<ServeSettings> {
  /** Directory for the worker sockets (private to the proxy); needed with workers. */
  socketDir?: string;
  /** The command line of a worker, given its socket path; needed with workers. */
  commandLine?: (socket: string) => CommandLine;
  /** Starts processes; tests inject fakes. */
  spawn?: SpawnFn;
  /** Connects to a worker socket; tests inject fakes. */
  connect?: (path: string) => Promise<Deno.Conn>;
  /** Connects to an upstream; tests inject fakes. */
  connectUpstream?: (address: Address, timeoutMs: number) => Promise<Deno.Conn>;
  /** CA certificates (PEM) for TLS upstreams: what `--upstream-ca` names, read. */
  upstreamCaCerts?: string[];
  /** Looks up `dns:` and `srv:` upstreams. @default {DNS over TCP to --dns-server} */
  resolver?: Resolver;
  /** Randomness for the balancer and jitter. @default {Math.random} */
  random?: () => number;
  /**
   * Make an upstream set even without upstreams, so a reload can add some
   * (`--config`). @default {false}
   */
  reloadableUpstreams?: boolean;
}

/** A dispatcher and the sets it was built from, for a reload to change. */
export interface DispatcherParts {
  /** The dispatcher (not started: call `start()`). */
  dispatcher: Dispatcher;
  /** The local workers, when there are any. */
  supervisor: Supervisor | null;
  /** The remote servers, when there are any (or `reloadableUpstreams`). */
  upstreams: UpstreamSet | null;
}

/** The options of the pool of local workers, as before upstreams existed. */
export type PoolOptions = DispatcherFactoryOptions & {
  socketDir: string;
  commandLine: (socket: string) => CommandLine;
};

/**
 * Builds a dispatcher (not started: call `start()`).
 *
 * @throws {OptionError} For an option out of range.
 */
export function createDispatcher(options: DispatcherFactoryOptions): Dispatcher {
  return assembleDispatcher(options).dispatcher;
}

/**
 * Builds a dispatcher and returns it with its sets.
 *
 * @throws {OptionError} For an option out of range.
 */
export function assembleDispatcher(options: DispatcherFactoryOptions): DispatcherParts {
  const {
    socketDir,
    commandLine,
    spawn,
    connect,
    connectUpstream,
    upstreamCaCerts,
    resolver,
    random,
    reloadableUpstreams,
    ...given
  } = options;
  const s = resolveServeSettings(given);
  const sets: EndpointSet[] = [];
  let supervisor: Supervisor | null = null;
  let upstreams: UpstreamSet | null = null;
  const hasWorkers = s.pool !== "static" || s.workers > 0;
  if (hasWorkers) {
    if (socketDir === undefined || commandLine === undefined) {
      throw new TypeError("Cannot create dispatcher: workers need a socketDir and a commandLine");
    }
    supervisor = new Supervisor({
      mode: s.pool,
      socketDir,
      commandLine,
      ...poolSettings(s),
      // A worker's answer may carry what a client's request could, under the
      // proxy's msgid (up to 9 bytes where the client's took 1).
      maxMessageSize: s.maxMessageSize + MAX_ENVELOPE_HEAD,
      errorFormat: s.errorFormat,
      ...(spawn ? { spawn } : {}),
      ...(connect ? { connect } : {}),
      ...(random ? { random } : {}),
    });
    sets.push(supervisor);
  }
  if (s.upstream.length > 0 || reloadableUpstreams) {
    const server = s.dnsServer === undefined ? undefined : parseAddress(s.dnsServer);
    upstreams = new UpstreamSet({
      specs: s.upstream.map(parseUpstreamSpec),
      allowEmpty: reloadableUpstreams ?? false,
      connections: s.upstreamConnections,
      connectTimeout: s.upstreamConnectTimeout,
      maxInFlight: s.upstreamMaxInFlight,
      writeLimit: s.workerWriteLimit,
      maxMessageSize: s.maxMessageSize + MAX_ENVELOPE_HEAD,
      errorFormat: s.errorFormat,
      slowStartMs: s.slowStart,
      timed: s.balance === "ewma",
      consecutiveFailures: s.outlierFailures,
      ejectionTimeMs: s.ejectionTime,
      maxEjectionPercent: s.maxEjectionPercent,
      panicThresholdPercent: s.panicThreshold,
      healthInterval: s.healthInterval,
      healthTimeout: s.healthTimeout,
      healthCheck: s.healthCheck,
      rise: s.healthRise,
      fall: s.healthFall,
      dnsRefreshMs: s.dnsRefresh,
      resolver: resolver ??
        dnsResolver(
          server?.transport === "tcp"
            ? { hostname: server.hostname, port: server.port }
            : undefined,
          s.dnsRefresh / 1000,
        ),
      ...(connectUpstream ? { connect: connectUpstream } : {}),
      ...(upstreamCaCerts ? { caCerts: upstreamCaCerts } : {}),
      ...(random ? { random } : {}),
    });
    sets.push(upstreams);
  }
  const dispatcher = new Dispatcher({
    set: sets.length === 1 ? sets[0]! : new CompositeSet(sets),
    balancer: createBalancer(s.balance, {
      hashBalanceFactor: s.hashBalanceFactor,
      keepBatchBelowUs: s.keepBatchBelow,
      keepBatchLead: s.keepBatchLead,
      ...(random ? { random } : {}),
    }),
    mode: hasWorkers ? s.pool : "upstreams",
    queueSize: s.queueSize,
    ...dispatchLimits(s),
    maxPendingPerHost: s.upstreamMaxPending,
    timed: s.balance === "ewma",
  });
  return { dispatcher, supervisor, upstreams };
}

/**
 * The supervisor's options that come from settings and may change while it
 * runs (see `Supervisor.reconfigure`).
 */
export function poolSettings(s: ServeSettings): Omit<
  SupervisorOptions,
  | "mode"
  | "socketDir"
  | "commandLine"
  | "maxMessageSize"
  | "errorFormat"
  | "spawn"
  | "connect"
  | "random"
> {
  return {
    workers: s.workers,
    minWorkers: s.minWorkers,
    maxWorkers: s.maxWorkers,
    minSpare: s.minSpare,
    maxSpare: s.maxSpare,
    idleTimeout: s.idleTimeout,
    maxInFlightPerWorker: s.maxInFlightPerWorker,
    startTimeout: s.workerStartTimeout,
    readyCheck: s.readyCheck,
    shutdownGrace: s.shutdownGrace,
    workerLogRate: s.workerLogRate,
    workerWriteLimit: s.workerWriteLimit,
    maxRequests: s.maxRequests,
    maxRequestsJitter: s.maxRequestsJitter,
    maxMemoryMb: s.maxMemory,
    memoryCheckInterval: s.memoryCheckInterval,
    crashLoopThreshold: s.crashLoopThreshold,
    crashLoopWindow: s.crashLoopWindow,
    crashLoopCooldown: s.crashLoopCooldown,
  };
}

/** The dispatcher's time limits and retries, which may change while it runs. */
export function dispatchLimits(
  s: ServeSettings,
): Pick<
  DispatcherOptions,
  "queueTimeout" | "requestTimeout" | "methodTimeouts" | "killAfter" | "retry"
> {
  return {
    queueTimeout: s.queueTimeout,
    requestTimeout: s.requestTimeout,
    methodTimeouts: s.methodTimeout,
    killAfter: s.killAfter,
    retry: s.retryAll ? "all" : s.retryIdempotent,
  };
}

/** A dispatcher over local workers only (what tests of the pool use). */
export function createPool(options: PoolOptions): Dispatcher {
  return createDispatcher(options);
}
