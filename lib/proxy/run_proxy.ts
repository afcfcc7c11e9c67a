/**
 * `proxy serve` as a whole process: a private socket directory, the
 * dispatcher and its workers, the front listener, and a graceful stop on
 * SIGINT/SIGTERM.
 *
 * @module
 */

import { watchParent } from "../backend/run_backend.ts";
import { getLogger } from "../log.ts";
import { formatAddress } from "../net/address.ts";
import { readCaCerts, readServerCert } from "../net/tls.ts";
import { TokenSet } from "../auth/token_set.ts";
import { OptionError } from "../options/option.ts";
import { MAX_ENVELOPE_HEAD } from "../protocol/envelope.ts";
import { resolveServeSettings, type ServeSettings } from "../options/serve_options.ts";
import { createDispatcher } from "../dispatch/create_dispatcher.ts";
import { connectionsWithin, readOpenFileLimit } from "../process/fd_limit.ts";
import { workerCommandLine } from "../process/self_command.ts";
import { createSocketDir, removeStaleSocketDirs } from "../process/socket_dir.ts";
import { serveLegacy } from "./legacy_session.ts";
import { ProxyServer } from "./proxy_server.ts";
import { exposureWarning, isLoopback } from "./exposure.ts";

export { isLoopback } from "./exposure.ts";

/** Options of {@linkcode runProxy}: any `proxy serve` option (see `SERVE_OPTIONS`), and hooks. */
export interface RunProxyOptions extends Partial<Omit<ServeSettings, "logLevel">> {
  /** Called once ready, with the bound address. */
  onListening?: (address: string) => void;
  /** Stops the proxy as SIGTERM would. */
  signal?: AbortSignal;
}

/**
 * The flags a built-in worker gets so that it accepts whatever the proxy
 * accepts (the msgid rewrite may add a few bytes) and answers as the proxy
 * would.
 */
export function builtinWorkerArgs(s: ServeSettings): string[] {
  return [
    "--log-level",
    "warning",
    "--max-message-size",
    String(s.maxMessageSize + MAX_ENVELOPE_HEAD),
    "--max-depth",
    String(s.maxDepth),
    "--error-format",
    s.errorFormat,
    "--max-in-flight-per-connection",
    String(s.maxInFlightPerWorker),
    ...(s.testMethods ? ["--test-methods"] : []),
    ...s.handler.flatMap((h) => ["--handler", h]),
  ];
}

/**
 * Runs the proxy until SIGINT/SIGTERM (or `signal`); resolves after a clean
 * stop.
 *
 * @throws {OptionError} For an option out of range.
 * @throws {ProxyError} `NO_WORKERS` when the workers cannot start.
 * @throws {Error} When the port is taken.
 */
export async function runProxy(options: RunProxyOptions): Promise<void> {
  const log = getLogger(["proxy"]);
  const { onListening, signal, ...given } = options;
  const s = resolveServeSettings(given);
  // Files named by flags are read before anything starts, so a bad one is
  // reported at once, by name.
  const tls = s.tlsCert === undefined ? undefined : await readServerCert(s.tlsCert, s.tlsKey!);
  const tokens = s.authTokenFile === undefined ? undefined : await TokenSet.load(s.authTokenFile);
  const upstreamCaCerts = s.upstreamCa === undefined
    ? undefined
    : await readCaCerts(s.upstreamCa, "--upstream-ca");
  // Directories left by proxies killed with SIGKILL (their lock is free).
  for (const dir of await removeStaleSocketDirs()) {
    log.info(`Removed a stale socket directory: ${dir}`);
  }
  const maxConnections = await connectionLimit(s);
  // A fresh private directory (0700): no other user can reach the workers.
  const socketDir = await createSocketDir();
  try {
    const backendArgs = builtinWorkerArgs(s);
    const pool = createDispatcher({
      ...s,
      ...(upstreamCaCerts ? { upstreamCaCerts } : {}),
      socketDir: socketDir.path,
      commandLine: (socket) =>
        workerCommandLine({
          socket,
          ...(s.workerCmd === undefined ? {} : { workerCmd: s.workerCmd }),
          backendArgs,
        }),
    });
    const server = new ProxyServer({
      address: { transport: "tcp", hostname: s.host, port: s.port },
      pool,
      ...(tls ? { tls } : {}),
      ...(tokens ? { auth: tokens } : {}),
      authTimeout: s.authTimeout,
      legacyUnauthenticated: s.legacyUnauthenticated,
      // Dedicated workers and hashing need each request's key.
      routed: s.pool === "dedicated" || s.balance === "hash",
      legacyHandler: serveLegacy,
      maxMessageSize: s.maxMessageSize,
      maxConnections,
      routeKey: s.routeKey,
      firstByteTimeout: s.firstByteTimeout,
      messageTimeout: s.messageTimeout,
      clientIdleTimeout: s.clientIdleTimeout,
      maxInFlightPerConnection: s.maxInFlightPerConnection,
      writeBufferLimit: s.writeBufferLimit,
      legacyPipeline: s.legacyPipeline,
      errorFormat: s.errorFormat,
      controlMethods: s.controlMethods,
    });
    let bound;
    try {
      bound = await server.bind();
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new Error(`Cannot listen on ${s.host}:${s.port}: address already in use`, {
          cause: err,
        });
      }
      if (tls) {
        throw new OptionError(
          "--tls-cert",
          `cannot listen with ${s.tlsCert} and key ${s.tlsKey}: ${(err as Error).message}`,
        );
      }
      throw err;
    }
    const exposed = exposureWarning(s.host, {
      tls: tls !== undefined,
      auth: tokens !== undefined,
      legacyUnauthenticated: s.legacyUnauthenticated,
    });
    if (exposed) log.warn(exposed);
    else if (!isLoopback(s.host)) log.info(`Listening on ${s.host} with TLS and authentication`);
    let stop!: (why: string) => void;
    const stopped = new Promise<string>((resolve) => stop = resolve);
    // A bug in one request's path must not take every client down: log it
    // loudly and keep serving.
    const onUnhandled = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      log.error(`Unhandled error (please report it): ${event.reason?.stack ?? event.reason}`);
    };
    globalThis.addEventListener("unhandledrejection", onUnhandled);
    const onSignal = () => stop("signal");
    Deno.addSignalListener("SIGTERM", onSignal);
    Deno.addSignalListener("SIGINT", onSignal);
    // SIGHUP: rolling restart, one worker at a time, dropping nothing.
    const onHup = () => {
      log.info("SIGHUP: replacing workers one at a time");
      void pool.reload();
      void tokens?.reload(); // token rotation: --auth-token-file read again
    };
    Deno.addSignalListener("SIGHUP", onHup);
    signal?.addEventListener("abort", () => stop("aborted"), { once: true });
    if (s.parentWatch) void watchParent(() => stop("parent gone"));
    try {
      await pool.start();
      server.serve();
      const workers = s.pool === "static"
        ? `${s.workers} worker${s.workers === 1 ? "" : "s"}`
        : `${s.pool} pool of up to ${s.maxWorkers} workers`;
      const upstreams = s.upstream.length === 0
        ? ""
        : ` and ${s.upstream.length} upstream${
          s.upstream.length === 1 ? "" : "s"
        } (--balance ${s.balance})`;
      const size = s.pool === "static" && s.workers === 0
        ? upstreams.slice(5)
        : `${workers}${upstreams}`;
      const security = `${tls ? "; TLS" : ""}${tokens ? "; token authentication" : ""}`;
      log.info(`Proxy ${Deno.pid} listening on ${formatAddress(bound)} with ${size}${security}`);
      onListening?.(formatAddress(bound));
      const why = await stopped;
      log.info(`Proxy stopping (${why}): draining requests in flight`);
      await server.close({ drainTimeout: s.drainTimeout, graceMs: s.shutdownGrace });
      log.info("Proxy stopped");
    } finally {
      Deno.removeSignalListener("SIGTERM", onSignal);
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGHUP", onHup);
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
      await server.close({ drainTimeout: 0, graceMs: 0 });
    }
  } finally {
    await socketDir.remove();
  }
}

// --max-connections within the open-file limit, with room kept for the
// workers; beyond it, connections are refused at once instead of hanging.
async function connectionLimit(s: ServeSettings): Promise<number> {
  const limit = await readOpenFileLimit();
  if (limit === null) return s.maxConnections;
  const workers = s.pool === "static" ? s.workers : s.maxWorkers;
  const fits = connectionsWithin(limit, workers);
  if (s.maxConnections <= fits) return s.maxConnections;
  getLogger(["proxy"]).warn(
    `--max-connections ${s.maxConnections} exceeds what the open-file limit of ${limit} allows with ${workers} workers; ` +
      `holding at most ${fits} connections (raise the limit with ulimit -n to allow more)`,
  );
  return fits;
}
