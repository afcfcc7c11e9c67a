/**
 * `proxy serve` as a whole process: a private socket directory, the
 * dispatcher and its workers, the front listener, and a graceful stop on
 * SIGINT/SIGTERM.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { watchParent } from "../backend/run_backend.ts";
import { getLogger } from "../log.ts";
import { formatAddress } from "../net/address.ts";
import { TokenSet } from "../auth/token_set.ts";
import { OptionError } from "../options/option.ts";
import { MAX_ENVELOPE_HEAD } from "../protocol/envelope.ts";
import { ErrorCode, ProxyError } from "../protocol/errors.ts";
import {
  loadServeSettings,
  parseAdminAddress,
  type ServeSettings,
} from "../options/serve_options.ts";
import {
  assembleDispatcher,
  type DispatcherParts,
  dispatchLimits,
  poolSettings,
} from "../dispatch/create_dispatcher.ts";
import { combineObservers, type RequestObserver } from "../dispatch/observer.ts";
import { parseUpstreamSpec } from "../dispatch/upstream_spec.ts";
import { AdminServer, type ReloadReport } from "../admin/admin_server.ts";
import { renderMetrics } from "../metrics/proxy_metrics.ts";
import { RequestMetrics } from "../metrics/request_metrics.ts";
import { connectionsWithin, readOpenFileLimit } from "../process/fd_limit.ts";
import { workerCommandLine } from "../process/self_command.ts";
import { absoluteHandler, ignoredGrants } from "../process/worker_permissions.ts";
import { workerGrants } from "../options/worker_permission_options.ts";
import { createSocketDir, removeStaleSocketDirs } from "../process/socket_dir.ts";
import { AccessLog } from "./access_log.ts";
import { serveLegacy } from "./legacy_session.ts";
import { ProxyServer } from "./proxy_server.ts";
import { planReload } from "./reload_plan.ts";
import { readServeFiles } from "./serve_files.ts";
import { exposureWarning, isLoopback } from "./exposure.ts";

export { isLoopback } from "./exposure.ts";

/** Options of {@linkcode runProxy}: any `proxy serve` option (see `SERVE_OPTIONS`), and hooks. */
export interface RunProxyOptions extends Partial<ServeSettings> {
  /** Called once ready, with the bound address. */
  onListening?: (address: string) => void;
  /** Called once the admin endpoint listens, with its address. */
  onAdminListening?: (address: string) => void;
  /**
   * Called after a reload applied new options (with all of them), e.g. to
   * set the log level anew.
   */
  onReconfigure?: (settings: ServeSettings) => void | Promise<void>;
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
    // Warnings and worse only: a worker logs nothing per request.
    "--log-level",
    "warning",
    // The proxy parses JSON lines back into records (see WorkerOutput).
    "--log-format",
    s.logFormat,
    "--max-message-size",
    String(s.maxMessageSize + MAX_ENVELOPE_HEAD),
    "--max-depth",
    String(s.maxDepth),
    "--error-format",
    s.errorFormat,
    "--max-in-flight-per-connection",
    String(s.maxInFlightPerWorker),
    ...(s.testMethods ? ["--test-methods"] : []),
    ...workerHandlers(s).flatMap((h) => ["--handler", h]),
  ];
}

// Handler modules as absolute paths, so the module a worker is granted to
// read is the one it loads.
function workerHandlers(s: ServeSettings): string[] {
  return s.handler.map((h) => absoluteHandler(h, Deno.cwd()));
}

/**
 * Runs the proxy until SIGINT/SIGTERM (or `signal`); resolves after a clean
 * stop. With `config`, options come from that file too (flags given win),
 * and SIGHUP re-reads it.
 *
 * @throws {OptionError} For an option out of range (`ConfigError` for one in the file).
 * @throws {ProxyError} `NO_WORKERS` when the workers cannot start.
 * @throws {Error} When the port is taken.
 *
 * @example A proxy with one built-in worker, stopped by a signal
 * ```ts
 * import assert from "node:assert/strict";
 * import { runProxy } from "./run_proxy.ts";
 * import { RpcClient } from "../client/rpc_client.ts";
 *
 * const stop = new AbortController();
 * const listening = Promise.withResolvers<string>();
 * const proxy = runProxy({
 *   port: 0, // a free port
 *   workers: 1, // this program re-invoked as `proxy backend`
 *   signal: stop.signal,
 *   onListening: listening.resolve,
 * });
 * const client = await RpcClient.connect(await listening.promise);
 * assert.equal(await client.call("echo", [2n ** 64n - 1n]), 2n ** 64n - 1n);
 * client.close();
 * stop.abort();
 * await proxy; // workers stopped, socket directory removed
 * ```
 */
export async function runProxy(options: RunProxyOptions): Promise<void> {
  const log = getLogger(["proxy"]);
  const { onListening, onAdminListening, onReconfigure, signal, ...given } = options;
  let s = await loadServeSettings(given);
  const files = await readServeFiles(s);
  const { tls, tokens, upstreamCaCerts } = files;
  let adminTokens = files.adminTokens;
  // Directories left by proxies killed with SIGKILL (their lock is free).
  for (const dir of await removeStaleSocketDirs()) {
    log.info(`Removed a stale socket directory: ${dir}`);
  }
  const maxConnections = await connectionLimit(s);
  // A fresh private directory (0700): no other user can reach the workers.
  const socketDir = await createSocketDir();
  try {
    const ignored = ignoredGrants(workerGrants(s), {
      standalone: Deno.build.standalone,
      workerCmd: s.workerCmd !== undefined,
    });
    if (ignored) log.warn(ignored);
    const parts = assembleDispatcher({
      ...s,
      ...(upstreamCaCerts ? { upstreamCaCerts } : {}),
      socketDir: socketDir.path,
      // Read at each spawn, so a reload's new worker settings reach new workers.
      commandLine: (socket) =>
        workerCommandLine({
          socket,
          ...(s.workerCmd === undefined ? {} : { workerCmd: s.workerCmd }),
          backendArgs: builtinWorkerArgs(s),
          permissions: { handlers: workerHandlers(s), grants: workerGrants(s) },
        }),
      reloadableUpstreams: s.config !== undefined,
    });
    const pool = parts.dispatcher;
    const metrics = s.admin === undefined
      ? null
      : new RequestMetrics({ maxMethods: s.metricsMethods });
    const observe = (settings: ServeSettings) => {
      const observers: RequestObserver[] = [];
      if (metrics) observers.push(metrics);
      if (settings.accessLog) observers.push(new AccessLog({ sample: settings.accessLogSample }));
      pool.observe(combineObservers(observers));
    };
    observe(s);

    // One reload at a time; one more may wait, and callers meanwhile share it.
    let running: Promise<ReloadReport> | null = null;
    let queued: Promise<ReloadReport> | null = null;
    const reload = (why: string): Promise<ReloadReport> => {
      if (!running) {
        running = applyReload(why).finally(() => running = null);
        return running;
      }
      queued ??= running.then(() => {
        queued = null;
        return reload(why);
      });
      return queued;
    };
    const applyReload = async (why: string): Promise<ReloadReport> => {
      log.info(`${why}: reloading${s.config === undefined ? "" : ` ${s.config}`}`);
      let applied: string[] = [];
      let restart: string[] = [];
      if (s.config !== undefined) {
        let next: ServeSettings;
        try {
          next = await loadServeSettings(given);
        } catch (err) {
          const error = (err as Error).message;
          log.error(`Reload refused: ${error}; the running configuration stays`);
          return { ok: false, error };
        }
        const plan = planReload(s, next, parts.upstreams !== null);
        restart = plan.restart;
        // What cannot change now keeps its running value.
        const kept = Object.fromEntries(plan.kept.map((k) => [k, s[k]]));
        const before = s;
        const candidate = Object.freeze({ ...next, ...kept }) as ServeSettings;
        // Logging first: a log file that cannot be opened refuses the whole
        // reload, with the old logging back in place to say so.
        if (plan.front.length > 0 && onReconfigure) {
          try {
            await onReconfigure(candidate);
          } catch (err) {
            const error = (err as Error).message;
            await Promise.resolve(onReconfigure(before)).catch(() => {});
            log.error(`Reload refused: ${error}; the running configuration stays`);
            return { ok: false, error };
          }
        }
        s = candidate;
        if (s.adminTokenFile !== adminTokens?.path) {
          try {
            adminTokens = s.adminTokenFile === undefined
              ? undefined
              : await TokenSet.load(s.adminTokenFile, "--admin-token-file");
          } catch (err) {
            log.error(`${(err as Error).message}; the admin tokens stay as they were`);
          }
        }
        await applyPlan(parts, s, plan);
        if (plan.front.length > 0) observe(s);
        applied = plan.applied;
        if (applied.length > 0) log.info(`Applied: ${applied.join(", ")}`);
        if (restart.length > 0) {
          log.warn(`Changed, but applied only by a restart: ${restart.join(", ")}`);
        }
      }
      // Token files are read again at every reload: rotation needs no config change.
      await Promise.all([tokens?.reload(), adminTokens?.reload()]);
      const { replaced, failed } = await pool.reload();
      return { ok: true, applied, restart_needed: restart, replaced, failed };
    };

    const server = new ProxyServer({
      address: { transport: "tcp", hostname: s.host, port: s.port },
      pool,
      ...(tls ? { tls } : {}),
      ...(tokens ? { auth: tokens } : {}),
      authTimeout: s.authTimeout,
      authMaxMessageSize: s.authMaxMessageSize,
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
      reload: async () => {
        const r = await reload("proxy.reload");
        if (!r.ok) throw new ProxyError(ErrorCode.CONFIG_REFUSED, `Cannot reload: ${r.error}`);
        return { replaced: r.replaced, failed: r.failed };
      },
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
    const started = Date.now() / 1000;
    const admin: AdminServer | null = s.admin === undefined ? null : new AdminServer({
      address: parseAdminAddress(s.admin),
      metrics: async () => {
        await pool.readMemory().catch(() => {});
        return renderMetrics(server.stats(), metrics!, {
          version: denoJson.version,
          startTimeSeconds: started,
          adminUnauthorized: admin?.unauthorized ?? 0,
        });
      },
      status: async () => {
        await pool.readMemory().catch(() => {});
        return server.stats();
      },
      notReady: () => server.draining ? "draining" : pool.notReady(),
      reload: () => reload("POST /reload"),
      tokens: () => adminTokens,
    });
    if (admin) {
      const where = parseAdminAddress(s.admin!);
      if (where.transport === "tcp" && !isLoopback(where.hostname) && adminTokens === undefined) {
        log.warn(
          `INSECURE: the admin endpoint on ${s.admin} is reachable from other machines and anyone who reaches it ` +
            "may POST /reload: add --admin-token-file, or listen on 127.0.0.1",
        );
      }
    }
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
    // SIGHUP: the config file read again, and the workers replaced one at a
    // time, dropping nothing.
    const onHup = () => void reload("SIGHUP");
    Deno.addSignalListener("SIGHUP", onHup);
    signal?.addEventListener("abort", () => stop("aborted"), { once: true });
    if (s.parentWatch) void watchParent(() => stop("parent gone"));
    try {
      // Up before the workers, so /readyz says 503 while they start.
      if (admin) {
        const at = admin.start();
        log.info(`Admin endpoint on http://${at}/ (metrics, status, healthz, readyz, reload)`);
        onAdminListening?.(at);
      }
      await pool.start();
      server.serve();
      const security = `${tls ? "; TLS" : ""}${tokens ? "; token authentication" : ""}`;
      log.info(
        `Proxy ${Deno.pid} listening on ${formatAddress(bound)} with ${describe(s)}${security}`,
      );
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
      await admin?.close();
    }
  } finally {
    await socketDir.remove();
  }
}

// `4 workers and 2 upstreams (--balance least-request)`.
function describe(s: ServeSettings): string {
  const workers = s.pool === "static"
    ? `${s.workers} worker${s.workers === 1 ? "" : "s"}`
    : `${s.pool} pool of up to ${s.maxWorkers} workers`;
  const upstreams = s.upstream.length === 0
    ? ""
    : ` and ${s.upstream.length} upstream${
      s.upstream.length === 1 ? "" : "s"
    } (--balance ${s.balance})`;
  return s.pool === "static" && s.workers === 0 ? upstreams.slice(5) : `${workers}${upstreams}`;
}

// Applies what a reload may change while running.
async function applyPlan(
  parts: DispatcherParts,
  s: ServeSettings,
  plan: ReturnType<typeof planReload>,
): Promise<void> {
  if (plan.dispatch.length > 0) parts.dispatcher.reconfigure(dispatchLimits(s));
  if (parts.supervisor && (plan.pool.length > 0 || plan.worker.length > 0)) {
    parts.supervisor.reconfigure(poolSettings(s));
  }
  if (plan.upstreams && parts.upstreams) {
    await parts.upstreams.setSpecs(s.upstream.map(parseUpstreamSpec));
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
