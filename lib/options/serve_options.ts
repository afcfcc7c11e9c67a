/**
 * The options of `proxy serve` (and {@linkcode runProxy}): one table that
 * the library, the CLI, `--help`, the config file and the README read.
 *
 * @module
 */

import type { ErrorFormat } from "../protocol/message.ts";
import { parseRoutePath } from "../protocol/route_key.ts";
import { splitCommand } from "../process/self_command.ts";
import type { LogLevel } from "../log.ts";
import { POOL_MODES, type PoolMode } from "../dispatch/supervisor.ts";
import { READY_CHECKS, type ReadyCheck } from "../dispatch/worker.ts";
import {
  clientIdleTimeout,
  drainTimeout,
  errorFormat,
  logLevel,
  maxConnections,
  maxDepth,
  maxInFlightPerConnection,
  maxMessageSize,
  messageTimeout,
  writeBufferLimit,
} from "./common_options.ts";
import { BALANCE_STRATEGIES, type BalanceStrategy } from "../dispatch/balancers/balancer.ts";
import { HEALTH_CHECKS, type HealthCheck } from "../dispatch/upstream.ts";
import { parseUpstreamSpec } from "../dispatch/upstream_spec.ts";
import { parseAddress } from "../net/address.ts";
import {
  choiceOption,
  durationMapOption,
  durationOption,
  intOption,
  listOption,
  numberOption,
  OptionError,
  type OptionTable,
  repeatOption,
  resolveOptions,
  sizeOption,
  stringOption,
  switchOption,
} from "./option.ts";

const CPUS = navigator.hardwareConcurrency || 1;

/** The table of `proxy serve` options, in the order `--help` shows them. */
export const SERVE_OPTIONS: OptionTable = [
  stringOption({
    name: "host",
    help: "interface to listen on; beyond loopback the proxy is reachable from the network",
    default: "127.0.0.1",
  }),
  intOption({
    name: "port",
    help: "TCP port (0 picks a free one)",
    default: 8080,
    min: 0,
    max: 65535,
  }),
  stringOption({
    name: "tls-cert",
    arg: "file",
    help: "serve clients over TLS with this certificate chain (PEM; needs --tls-key)",
  }),
  stringOption({
    name: "tls-key",
    arg: "file",
    help: "the private key of --tls-cert (PEM)",
  }),
  stringOption({
    name: "auth-token-file",
    arg: "file",
    help:
      "clients must first call proxy.auth with a token of this file (one a line); SIGHUP reads it again",
  }),
  durationOption({
    name: "auth-timeout",
    help:
      "with --auth-token-file: close a connection not authenticated this long after its first byte",
    default: 10_000,
    min: 1,
  }),
  switchOption({
    name: "legacy-unauthenticated",
    help:
      "with --auth-token-file: still serve legacy-protocol clients (they cannot authenticate; refused otherwise)",
  }),
  choiceOption<PoolMode>({
    name: "pool",
    help: "how the pool sizes itself: static, dynamic, ondemand or dedicated",
    default: "static",
    choices: POOL_MODES,
  }),
  intOption({
    name: "workers",
    help: "static: worker processes (0: none, upstreams only)",
    default: CPUS,
    defaultText: "number of CPUs",
    min: 0,
    max: 4096,
  }),
  intOption({
    name: "min-workers",
    help: "dynamic: workers kept even when idle",
    default: 1,
    min: 0,
    max: 4096,
  }),
  intOption({
    name: "max-workers",
    help: "dynamic, ondemand, dedicated: most workers at once",
    defaultText: "2 x CPUs; dedicated: 64",
    min: 1,
    max: 65536,
  }),
  intOption({
    name: "min-spare",
    help: "dynamic: idle workers kept ready ahead of demand",
    default: 1,
    min: 0,
    max: 4096,
  }),
  intOption({
    name: "max-spare",
    help: "dynamic: idle workers above which idle ones stop",
    default: 3,
    min: 0,
    max: 4096,
  }),
  durationOption({
    name: "idle-timeout",
    help: "dynamic, ondemand, dedicated: idle time before a worker stops",
    default: 10_000,
    min: 1,
  }),
  stringOption({
    name: "route-key",
    arg: "path",
    help: "path into the first parameter that gives the routing key (dedicated, --balance hash)",
    default: "user_id",
    validate: (text) => void parseRoutePath(text),
  }),
  stringOption({
    name: "worker-cmd",
    arg: "command",
    help: "run this program as the worker instead of the built-in one ({socket} = its socket path)",
    validate: (text) => {
      if (splitCommand(text).length === 0) throw new RangeError("expected a command, got nothing");
    },
  }),
  repeatOption({
    name: "handler",
    arg: "module",
    help: "handler module for the built-in workers (repeatable)",
  }),
  repeatOption({
    name: "upstream",
    arg: "where",
    help:
      "a server: tcp:HOST:PORT, tls:HOST:PORT, unix:/path, dns[+tls]:NAME:PORT, srv[+tls]:_svc._tcp.NAME, ,weight=N",
    validate: (text) => void parseUpstreamSpec(text),
  }),
  stringOption({
    name: "upstream-ca",
    arg: "file",
    help:
      "CA certificates (PEM) that sign the TLS upstreams' certificates (default: the usual roots)",
  }),
  choiceOption<BalanceStrategy>({
    name: "balance",
    help: "per-request strategy: least-request, round-robin, hash (on --route-key) or ewma",
    default: "least-request",
    choices: BALANCE_STRATEGIES,
  }),
  numberOption({
    name: "hash-balance-factor",
    help: "hash: no host takes more than this times the average load (0 = strict, no bound)",
    default: 0,
    min: 1,
    max: 100,
    also: [0],
  }),
  intOption({
    name: "upstream-connections",
    help: "multiplexed connections kept open to each upstream",
    default: 2,
    min: 1,
    max: 64,
  }),
  durationOption({
    name: "upstream-connect-timeout",
    help: "how long a connection to an upstream may take (then: retried with backoff and jitter)",
    default: 2_000,
    min: 1,
  }),
  intOption({
    name: "upstream-max-in-flight",
    help: "requests one upstream may have in flight",
    default: 256,
    min: 1,
    max: 1_000_000,
  }),
  intOption({
    name: "upstream-max-pending",
    help:
      "requests that may wait for one particular upstream (hashing); beyond: UPSTREAM_OVERLOADED",
    default: 1024,
    min: 0,
    max: 1_000_000,
  }),
  durationOption({
    name: "health-interval",
    help: "time between active checks of each upstream (0 = none)",
    default: 5_000,
  }),
  durationOption({
    name: "health-timeout",
    help: "how long one check may take",
    default: 2_000,
    min: 1,
  }),
  choiceOption<HealthCheck>({
    name: "health-check",
    help:
      "a check passes when the upstream answers ping (any answer), or when it accepts a connection",
    default: "ping",
    choices: HEALTH_CHECKS,
  }),
  intOption({
    name: "health-rise",
    help: "passing checks in a row that make an upstream healthy again",
    default: 2,
    min: 1,
    max: 100,
  }),
  intOption({
    name: "health-fall",
    help: "failing checks in a row that make an upstream unhealthy",
    default: 3,
    min: 1,
    max: 100,
  }),
  intOption({
    name: "outlier-failures",
    help: "transport failures in a row (lost connection, timeout) that eject an upstream",
    default: 5,
    min: 1,
    max: 1000,
  }),
  durationOption({
    name: "ejection-time",
    help: "how long an upstream stays ejected, times its number of ejections (at most 10 times)",
    default: 10_000,
    min: 1,
  }),
  intOption({
    name: "max-ejection-percent",
    help: "most upstreams ejected at once, in percent",
    default: 50,
    min: 0,
    max: 100,
  }),
  intOption({
    name: "panic-threshold",
    help: "below this percent of healthy upstreams, requests go to all of them",
    default: 50,
    min: 0,
    max: 100,
  }),
  durationOption({
    name: "slow-start",
    help: "an upstream that joins or recovers ramps up to its weight over this long (0 = at once)",
    default: 0,
  }),
  durationOption({
    name: "dns-refresh",
    help: "longest time between lookups of dns: and srv: upstreams (sooner when the TTL says so)",
    default: 30_000,
    min: 1000,
  }),
  stringOption({
    name: "dns-server",
    arg: "host:port",
    help: "DNS server for dns: and srv: upstreams (default: the system's)",
    validate: (text) => {
      const a = parseAddress(text);
      if (a.transport !== "tcp") throw new RangeError("expected HOST:PORT");
    },
  }),
  intOption({
    name: "max-in-flight-per-worker",
    help: "requests one worker may have in flight",
    default: 128,
    min: 1,
    max: 1_000_000,
  }),
  sizeOption({
    name: "worker-write-limit",
    help: "unwritten bytes per worker above which it gets no new requests (it does not read)",
    default: 4 * 1024 * 1024,
    min: 1024,
    max: 2 ** 32,
  }),
  intOption({
    name: "queue-size",
    help: "requests that may wait when every worker is full; beyond: QUEUE_FULL",
    default: 1024,
    min: 0,
    max: 10_000_000,
  }),
  durationOption({
    name: "queue-timeout",
    help: "longest wait in that queue; beyond: QUEUE_TIMEOUT",
    default: 10_000,
    min: 1,
  }),
  durationOption({
    name: "request-timeout",
    help: "a request unanswered this long gets TIMEOUT (0 = never)",
    default: 30_000,
  }),
  durationMapOption({
    name: "method-timeout",
    help: "per-method override of --request-timeout, NAME=DURATION (repeatable)",
  }),
  durationOption({
    name: "kill-after",
    help: "a worker still busy with one request this long is killed and replaced (0 = never)",
    default: 60_000,
  }),
  listOption({
    name: "retry-idempotent",
    arg: "m1,m2",
    help: "methods sent once more to another worker when theirs dies",
  }),
  switchOption({ name: "retry-all", help: "the same for every method" }),
  intOption({
    name: "max-requests",
    help: "retire a worker after N requests (0 = never)",
    default: 0,
    min: 0,
  }),
  intOption({
    name: "max-requests-jitter",
    help: "add 0..N requests per worker, so workers do not retire together",
    default: 0,
    min: 0,
  }),
  intOption({
    name: "max-memory",
    arg: "MB",
    help: "retire a worker whose resident memory exceeds MB MiB (0 = no limit)",
    default: 0,
    min: 0,
  }),
  durationOption({
    name: "memory-check-interval",
    help: "how often worker memory is read",
    default: 2_000,
    min: 10,
  }),
  intOption({
    name: "crash-loop-threshold",
    help: "exits of one worker within --crash-loop-window after which it stops being respawned",
    default: 5,
    min: 1,
    max: 1_000_000,
  }),
  durationOption({
    name: "crash-loop-window",
    help: "the window in which --crash-loop-threshold exits make a crash loop",
    default: 10_000,
    min: 1,
  }),
  durationOption({
    name: "crash-loop-cooldown",
    help: "rest before a crash-looping worker is tried again",
    default: 30_000,
    min: 1,
  }),
  durationOption({
    name: "worker-start-timeout",
    help: "a worker not ready by then is killed and reported",
    default: 10_000,
    min: 1,
  }),
  choiceOption<ReadyCheck>({
    name: "ready-check",
    help:
      "a worker is ready once it answers ping (any answer), or once its socket accepts (connect)",
    default: "ping",
    choices: READY_CHECKS,
  }),
  drainTimeout,
  durationOption({
    name: "shutdown-grace",
    help: "how long workers get to exit once asked to, before SIGKILL (which is logged)",
    default: 5_000,
  }),
  maxConnections,
  maxInFlightPerConnection(256),
  durationOption({
    name: "first-byte-timeout",
    help: "a new connection that sends nothing for this long is closed",
    default: 10_000,
    min: 1,
  }),
  messageTimeout,
  clientIdleTimeout,
  writeBufferLimit,
  intOption({
    name: "legacy-pipeline",
    help: "legacy frames in flight per connection; more wait unread",
    default: 128,
    min: 1,
    max: 100_000,
  }),
  maxMessageSize,
  maxDepth,
  errorFormat,
  switchOption({
    name: "test-methods",
    help: "built-in workers serve sleep, fail and crash (for tests: any client can crash a worker)",
  }),
  switchOption({
    name: "control-methods",
    help:
      "serve proxy.* methods that change state (proxy.reload) to any client; SIGHUP always works",
  }),
  switchOption({
    name: "parent-watch",
    help: "stop (as on SIGTERM) when stdin closes, for supervisors that hold a pipe",
  }),
  logLevel,
];

/** The resolved options of `proxy serve`. */
export interface ServeSettings {
  host: string;
  port: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  authTokenFile: string | undefined;
  authTimeout: number;
  legacyUnauthenticated: boolean;
  pool: PoolMode;
  workers: number;
  minWorkers: number;
  maxWorkers: number;
  minSpare: number;
  maxSpare: number;
  idleTimeout: number;
  routeKey: string;
  workerCmd: string | undefined;
  handler: string[];
  upstream: string[];
  upstreamCa: string | undefined;
  balance: BalanceStrategy;
  hashBalanceFactor: number;
  upstreamConnections: number;
  upstreamConnectTimeout: number;
  upstreamMaxInFlight: number;
  upstreamMaxPending: number;
  healthInterval: number;
  healthTimeout: number;
  healthCheck: HealthCheck;
  healthRise: number;
  healthFall: number;
  outlierFailures: number;
  ejectionTime: number;
  maxEjectionPercent: number;
  panicThreshold: number;
  slowStart: number;
  dnsRefresh: number;
  dnsServer: string | undefined;
  maxInFlightPerWorker: number;
  workerWriteLimit: number;
  queueSize: number;
  queueTimeout: number;
  requestTimeout: number;
  methodTimeout: Record<string, number>;
  killAfter: number;
  retryIdempotent: string[];
  retryAll: boolean;
  maxRequests: number;
  maxRequestsJitter: number;
  maxMemory: number;
  memoryCheckInterval: number;
  crashLoopThreshold: number;
  crashLoopWindow: number;
  crashLoopCooldown: number;
  workerStartTimeout: number;
  readyCheck: ReadyCheck;
  drainTimeout: number;
  shutdownGrace: number;
  maxConnections: number;
  maxInFlightPerConnection: number;
  firstByteTimeout: number;
  messageTimeout: number;
  clientIdleTimeout: number;
  writeBufferLimit: number;
  legacyPipeline: number;
  maxMessageSize: number;
  maxDepth: number;
  errorFormat: ErrorFormat;
  testMethods: boolean;
  controlMethods: boolean;
  parentWatch: boolean;
  logLevel: LogLevel;
}

/**
 * Fills the options of a proxy from the table's defaults, checking every
 * value given and the rules that tie several together.
 *
 * @throws {OptionError} For a value out of range or options that contradict.
 */
export function resolveServeSettings(given: Partial<ServeSettings>): ServeSettings {
  const o = { ...resolveOptions(SERVE_OPTIONS, given) } as unknown as ServeSettings;
  if (o.maxWorkers === undefined) o.maxWorkers = o.pool === "dedicated" ? 64 : 2 * CPUS;
  if (o.minSpare > o.maxSpare) {
    throw new OptionError("--min-spare", `${o.minSpare} is above --max-spare ${o.maxSpare}`);
  }
  if (o.pool === "dynamic" && o.minWorkers > o.maxWorkers) {
    throw new OptionError(
      "--min-workers",
      `${o.minWorkers} is above --max-workers ${o.maxWorkers}`,
    );
  }
  if (o.pool === "static" && o.workers === 0 && o.upstream.length === 0) {
    throw new OptionError("--workers", "0 workers and no --upstream: nowhere to send requests");
  }
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw o.tlsCert === undefined
      ? new OptionError("--tls-key", "needs --tls-cert too (both or neither)")
      : new OptionError("--tls-cert", "needs --tls-key too (both or neither)");
  }
  if (o.upstreamCa !== undefined && !o.upstream.some((u) => parseUpstreamSpec(u).tls)) {
    throw new OptionError(
      "--upstream-ca",
      "no upstream uses TLS (write tls:HOST:PORT, dns+tls: or srv+tls:)",
    );
  }
  if (o.pool === "dedicated" && o.upstream.length > 0) {
    throw new OptionError(
      "--upstream",
      "dedicated workers are local; to spread keys over hosts, use --balance hash in front of " +
        "`serve --pool dedicated` hosts",
    );
  }
  return Object.freeze(o);
}
