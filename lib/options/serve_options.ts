/**
 * The options of `proxy serve` (and {@linkcode runProxy}): one table that
 * the library, the CLI, `--help`, the config file and the README read.
 *
 * @module
 */

import type { ErrorFormat } from "../protocol/message.ts";
import { parseRoutePath } from "../protocol/route_key.ts";
import { splitCommand } from "../process/self_command.ts";
import { LOG_OPTIONS, type LogSettings, workerLogRate } from "./log_options.ts";
import {
  WORKER_PERMISSION_OPTIONS,
  type WorkerPermissionSettings,
} from "./worker_permission_options.ts";
import { POOL_MODES, type PoolMode } from "../dispatch/supervisor.ts";
import { READY_CHECKS, type ReadyCheck } from "../dispatch/worker.ts";
import {
  clientIdleTimeout,
  drainTimeout,
  errorFormat,
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
import { type Address, parseAddress } from "../net/address.ts";
import { ConfigError, readConfigFile } from "./config_file.ts";
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
    name: "config",
    arg: "file",
    help: "read options from this TOML file (flags given win); SIGHUP re-reads it",
    cliOnly: true,
  }),
  switchOption({
    name: "check",
    help: "check the options (and --config file), print what is wrong or OK, and exit",
    cliOnly: true,
  }),
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
  sizeOption({
    name: "auth-max-message-size",
    help: "with --auth-token-file: largest message accepted before a connection has authenticated",
    default: 16 * 1024,
    min: 64,
    max: 4 * 1024 * 1024,
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
    name: "keep-batch-below",
    arg: "us",
    help: "least-request, ewma: the requests of one read from a client stay on one host while it " +
      "answers in under this many microseconds each (0 = spread every request)",
    default: 50,
    min: 0,
    max: 1_000_000,
  }),
  intOption({
    name: "keep-batch-lead",
    help: "a batch stays on its host only while that host carries fewer than this many requests " +
      "more than the least loaded other host",
    default: 16,
    min: 1,
    max: 65_536,
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
  stringOption({
    name: "admin",
    arg: "host:port",
    help:
      "serve /metrics, /status, /healthz, /readyz and POST /reload over HTTP here (a bare port: on 127.0.0.1)",
    validate: (text) => void parseAdminAddress(text),
  }),
  stringOption({
    name: "admin-token-file",
    arg: "file",
    help:
      "POST /reload needs `Authorization: Bearer TOKEN` with a token from this file (one per line)",
  }),
  intOption({
    name: "metrics-methods",
    help:
      'methods that get a label of their own in /metrics (the first seen); the rest are "other"',
    default: 20,
    min: 0,
    max: 1000,
  }),
  switchOption({
    name: "access-log",
    help: "log one line per request (method, key, worker or upstream, code, latency) at info level",
  }),
  numberOption({
    name: "access-log-sample",
    help: "share of requests the access log writes, from 0 to 1",
    default: 1,
    min: 0,
    max: 1,
  }),
  switchOption({
    name: "parent-watch",
    help: "stop (as on SIGTERM) when stdin closes, for supervisors that hold a pipe",
  }),
  ...WORKER_PERMISSION_OPTIONS,
  ...LOG_OPTIONS,
  workerLogRate,
];

/**
 * The resolved options of `proxy serve`, each from its `--flag` (the library
 * takes any of them, see `runProxy`). Durations are milliseconds and sizes
 * bytes; defaults are written as the CLI writes them.
 */
export interface ServeSettings extends LogSettings, WorkerPermissionSettings {
  /**
   * `--host`: interface to listen on; beyond loopback the proxy is reachable from the network.
   * Default: `127.0.0.1`.
   */
  host: string;
  /** `--port`: TCP port (0 picks a free one). Default: `8080`. */
  port: number;
  /** `--tls-cert`: serve clients over TLS with this certificate chain (PEM; needs --tls-key). */
  tlsCert: string | undefined;
  /** `--tls-key`: the private key of --tls-cert (PEM). */
  tlsKey: string | undefined;
  /**
   * `--auth-token-file`: clients must first call proxy.auth with a token of this file (one a line);
   * SIGHUP reads it again.
   */
  authTokenFile: string | undefined;
  /**
   * `--auth-timeout`: with --auth-token-file: close a connection not authenticated this long after
   * its first byte. Default: `10s`.
   */
  authTimeout: number;
  /**
   * `--auth-max-message-size`: with --auth-token-file: largest message accepted before a connection
   * has authenticated. Default: `16KiB`.
   */
  authMaxMessageSize: number;
  /**
   * `--legacy-unauthenticated`: with --auth-token-file: still serve legacy-protocol clients (they
   * cannot authenticate; refused otherwise). Default: `off`.
   */
  legacyUnauthenticated: boolean;
  /**
   * `--pool`: how the pool sizes itself: static, dynamic, ondemand or dedicated. Default: `static`.
   */
  pool: PoolMode;
  /** `--workers`: static: worker processes (0: none, upstreams only). Default: `number of CPUs`. */
  workers: number;
  /** `--min-workers`: dynamic: workers kept even when idle. Default: `1`. */
  minWorkers: number;
  /**
   * `--max-workers`: dynamic, ondemand, dedicated: most workers at once. Default: `2 x CPUs;
   * dedicated: 64`.
   */
  maxWorkers: number;
  /** `--min-spare`: dynamic: idle workers kept ready ahead of demand. Default: `1`. */
  minSpare: number;
  /** `--max-spare`: dynamic: idle workers above which idle ones stop. Default: `3`. */
  maxSpare: number;
  /**
   * `--idle-timeout`: dynamic, ondemand, dedicated: idle time before a worker stops. Default:
   * `10s`.
   */
  idleTimeout: number;
  /**
   * `--route-key`: path into the first parameter that gives the routing key (dedicated, --balance
   * hash). Default: `user_id`.
   */
  routeKey: string;
  /**
   * `--worker-cmd`: run this program as the worker instead of the built-in one ({socket} = its
   * socket path).
   */
  workerCmd: string | undefined;
  /** `--handler`: handler module for the built-in workers (repeatable). */
  handler: string[];
  /**
   * `--upstream`: a server: tcp:HOST:PORT, tls:HOST:PORT, unix:/path, dns[+tls]:NAME:PORT,
   * srv[+tls]:_svc._tcp.NAME, ,weight=N.
   */
  upstream: string[];
  /**
   * `--upstream-ca`: CA certificates (PEM) that sign the TLS upstreams' certificates (default: the
   * usual roots).
   */
  upstreamCa: string | undefined;
  /**
   * `--balance`: per-request strategy: least-request, round-robin, hash (on --route-key) or ewma.
   * Default: `least-request`.
   */
  balance: BalanceStrategy;
  /**
   * `--hash-balance-factor`: hash: no host takes more than this times the average load (0 = strict,
   * no bound). Default: `0`.
   */
  hashBalanceFactor: number;
  /**
   * `--keep-batch-below`: least-request, ewma: the requests of one read from a client stay on one
   * host while it answers in under this many microseconds each (0 = spread every request). Default:
   * `50`.
   */
  keepBatchBelow: number;
  /**
   * `--keep-batch-lead`: a batch stays on its host only while that host carries fewer than this
   * many requests more than the least loaded other host. Default: `16`.
   */
  keepBatchLead: number;
  /** `--upstream-connections`: multiplexed connections kept open to each upstream. Default: `2`. */
  upstreamConnections: number;
  /**
   * `--upstream-connect-timeout`: how long a connection to an upstream may take (then: retried with
   * backoff and jitter). Default: `2s`.
   */
  upstreamConnectTimeout: number;
  /** `--upstream-max-in-flight`: requests one upstream may have in flight. Default: `256`. */
  upstreamMaxInFlight: number;
  /**
   * `--upstream-max-pending`: requests that may wait for one particular upstream (hashing); beyond:
   * UPSTREAM_OVERLOADED. Default: `1024`.
   */
  upstreamMaxPending: number;
  /** `--health-interval`: time between active checks of each upstream (0 = none). Default: `5s`. */
  healthInterval: number;
  /** `--health-timeout`: how long one check may take. Default: `2s`. */
  healthTimeout: number;
  /**
   * `--health-check`: a check passes when the upstream answers ping (any answer), or when it
   * accepts a connection. Default: `ping`.
   */
  healthCheck: HealthCheck;
  /** `--health-rise`: passing checks in a row that make an upstream healthy again. Default: `2`. */
  healthRise: number;
  /** `--health-fall`: failing checks in a row that make an upstream unhealthy. Default: `3`. */
  healthFall: number;
  /**
   * `--outlier-failures`: transport failures in a row (lost connection, timeout) that eject an
   * upstream. Default: `5`.
   */
  outlierFailures: number;
  /**
   * `--ejection-time`: how long an upstream stays ejected, times its number of ejections (at most
   * 10 times). Default: `10s`.
   */
  ejectionTime: number;
  /** `--max-ejection-percent`: most upstreams ejected at once, in percent. Default: `50`. */
  maxEjectionPercent: number;
  /**
   * `--panic-threshold`: below this percent of healthy upstreams, requests go to all of them.
   * Default: `50`.
   */
  panicThreshold: number;
  /**
   * `--slow-start`: an upstream that joins or recovers ramps up to its weight over this long (0 =
   * at once). Default: `0`.
   */
  slowStart: number;
  /**
   * `--dns-refresh`: longest time between lookups of dns: and srv: upstreams (sooner when the TTL
   * says so). Default: `30s`.
   */
  dnsRefresh: number;
  /** `--dns-server`: DNS server for dns: and srv: upstreams (default: the system's). */
  dnsServer: string | undefined;
  /** `--max-in-flight-per-worker`: requests one worker may have in flight. Default: `128`. */
  maxInFlightPerWorker: number;
  /**
   * `--worker-write-limit`: unwritten bytes per worker above which it gets no new requests (it does
   * not read). Default: `4MiB`.
   */
  workerWriteLimit: number;
  /**
   * `--queue-size`: requests that may wait when every worker is full; beyond: QUEUE_FULL. Default:
   * `1024`.
   */
  queueSize: number;
  /** `--queue-timeout`: longest wait in that queue; beyond: QUEUE_TIMEOUT. Default: `10s`. */
  queueTimeout: number;
  /**
   * `--request-timeout`: a request unanswered this long gets TIMEOUT (0 = never). Default: `30s`.
   */
  requestTimeout: number;
  /** `--method-timeout`: per-method override of --request-timeout, NAME=DURATION (repeatable). */
  methodTimeout: Record<string, number>;
  /**
   * `--kill-after`: a worker still busy with one request this long is killed and replaced (0 =
   * never). Default: `1m`.
   */
  killAfter: number;
  /** `--retry-idempotent`: methods sent once more to another worker when theirs dies. */
  retryIdempotent: string[];
  /** `--retry-all`: the same for every method. Default: `off`. */
  retryAll: boolean;
  /** `--max-requests`: retire a worker after N requests (0 = never). Default: `0`. */
  maxRequests: number;
  /**
   * `--max-requests-jitter`: add 0..N requests per worker, so workers do not retire together.
   * Default: `0`.
   */
  maxRequestsJitter: number;
  /**
   * `--max-memory`: retire a worker whose resident memory exceeds MB MiB (0 = no limit). Default:
   * `0`.
   */
  maxMemory: number;
  /** `--memory-check-interval`: how often worker memory is read. Default: `2s`. */
  memoryCheckInterval: number;
  /**
   * `--crash-loop-threshold`: exits of one worker within --crash-loop-window after which it stops
   * being respawned. Default: `5`.
   */
  crashLoopThreshold: number;
  /**
   * `--crash-loop-window`: the window in which --crash-loop-threshold exits make a crash loop.
   * Default: `10s`.
   */
  crashLoopWindow: number;
  /** `--crash-loop-cooldown`: rest before a crash-looping worker is tried again. Default: `30s`. */
  crashLoopCooldown: number;
  /**
   * `--worker-start-timeout`: a worker not ready by then is killed and reported. Default: `10s`.
   */
  workerStartTimeout: number;
  /**
   * `--ready-check`: a worker is ready once it answers ping (any answer), or once its socket
   * accepts (connect). Default: `ping`.
   */
  readyCheck: ReadyCheck;
  /**
   * `--drain-timeout`: on SIGINT/SIGTERM, how long requests in flight may finish. Default: `10s`.
   */
  drainTimeout: number;
  /**
   * `--shutdown-grace`: how long workers get to exit once asked to, before SIGKILL (which is
   * logged). Default: `5s`.
   */
  shutdownGrace: number;
  /** `--max-connections`: client connections held at once; more are refused. Default: `10000`. */
  maxConnections: number;
  /**
   * `--max-in-flight-per-connection`: requests one connection may have in flight; beyond, it is not
   * read until answers go out. Default: `256`.
   */
  maxInFlightPerConnection: number;
  /**
   * `--first-byte-timeout`: a new connection that sends nothing for this long is closed. Default:
   * `10s`.
   */
  firstByteTimeout: number;
  /**
   * `--message-timeout`: close a connection that sends part of a message and stalls this long (0 =
   * never). Default: `30s`.
   */
  messageTimeout: number;
  /**
   * `--client-idle-timeout`: close a connection idle between messages this long, nothing owed (0 =
   * never). Default: `0`.
   */
  clientIdleTimeout: number;
  /**
   * `--write-buffer-limit`: unread answers held per client; beyond, its requests stop being read
   * until it catches up. Default: `4MiB`.
   */
  writeBufferLimit: number;
  /**
   * `--legacy-pipeline`: legacy frames in flight per connection; more wait unread. Default: `128`.
   */
  legacyPipeline: number;
  /** `--max-message-size`: largest message accepted (MESSAGE_TOO_LARGE beyond). Default: `8MiB`. */
  maxMessageSize: number;
  /**
   * `--max-depth`: deepest nesting of arrays and maps decoded (INVALID_PARAMS beyond). Default:
   * `512`.
   */
  maxDepth: number;
  /**
   * `--error-format`: errors as {code, message, data} maps, or [code, message] arrays (Neovim,
   * pynvim). Default: `map`.
   */
  errorFormat: ErrorFormat;
  /**
   * `--test-methods`: built-in workers serve sleep, fail and crash (for tests: any client can crash
   * a worker). Default: `off`.
   */
  testMethods: boolean;
  /**
   * `--control-methods`: serve proxy.* methods that change state (proxy.reload) to any client;
   * SIGHUP always works. Default: `off`.
   */
  controlMethods: boolean;
  /**
   * `--admin`: serve /metrics, /status, /healthz, /readyz and POST /reload over HTTP here (a bare
   * port: on 127.0.0.1).
   */
  admin: string | undefined;
  /**
   * `--admin-token-file`: POST /reload needs `Authorization: Bearer TOKEN` with a token from this
   * file (one per line).
   */
  adminTokenFile: string | undefined;
  /**
   * `--metrics-methods`: methods that get a label of their own in /metrics (the first seen); the
   * rest are "other". Default: `20`.
   */
  metricsMethods: number;
  /**
   * `--access-log`: log one line per request (method, key, worker or upstream, code, latency) at
   * info level. Default: `off`.
   */
  accessLog: boolean;
  /** `--access-log-sample`: share of requests the access log writes, from 0 to 1. Default: `1`. */
  accessLogSample: number;
  /**
   * `--parent-watch`: stop (as on SIGTERM) when stdin closes, for supervisors that hold a pipe.
   * Default: `off`.
   */
  parentWatch: boolean;
  /**
   * `--worker-log-rate`: lines of output logged per worker per second; beyond, lines are dropped
   * and counted (0 = no limit). Default: `100`.
   */
  workerLogRate: number;
  /** `--config`: read options from this TOML file (flags given win); SIGHUP re-reads it. */
  config: string | undefined;
  /**
   * `--check`: check the options (and --config file), print what is wrong or OK, and exit. Default:
   * `off`.
   */
  check: boolean;
}

/**
 * Where `--admin` listens: `HOST:PORT`, a bare port (on 127.0.0.1), or `unix:/path`.
 *
 * @throws {RangeError} For anything else.
 */
export function parseAdminAddress(text: string): Address {
  if (/^\d+$/.test(text.trim())) return parseAddress(`127.0.0.1:${text.trim()}`);
  return parseAddress(text);
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

/**
 * The options of a proxy from its flags and, when `given.config` names one,
 * its config file: flags given win over the file, the file over defaults.
 *
 * @throws {ConfigError} When the file cannot be read or a value in it does not fit.
 * @throws {OptionError} For a value out of range or options that contradict.
 */
export async function loadServeSettings(given: Partial<ServeSettings>): Promise<ServeSettings> {
  const flags = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const file = given.config === undefined
    ? undefined
    : await readConfigFile(given.config, SERVE_OPTIONS);
  try {
    return resolveServeSettings({ ...file?.values, ...flags });
  } catch (err) {
    // A rule that ties options together, broken by a value from the file:
    // named by its line there.
    if (!(err instanceof OptionError) || file === undefined) throw err;
    const option = SERVE_OPTIONS.find((o) => `--${o.name}` === err.flag);
    if (!option || option.key in flags || !(option.key in file.values)) throw err;
    throw new ConfigError(file.where(option.key), err.message.slice(err.flag.length + 2));
  }
}
