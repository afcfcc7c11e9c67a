/**
 * `proxy serve` as a whole process: a private socket directory, the worker
 * pool, the front listener, and a graceful stop on SIGINT/SIGTERM.
 *
 * @module
 */

import { watchParent } from "../backend/run_backend.ts";
import { getLogger } from "../log.ts";
import { formatAddress } from "../net/address.ts";
import type { WorkerPoolOptions } from "../pool/pool_options.ts";
import { WorkerPool } from "../pool/worker_pool.ts";
import { workerCommandLine } from "../pool/worker_command.ts";
import { serveLegacy } from "./legacy_session.ts";
import { ProxyServer } from "./proxy_server.ts";

/** Options of {@linkcode runProxy}. */
export interface RunProxyOptions
  extends Omit<WorkerPoolOptions, "socketDir" | "commandLine" | "spawn" | "connect" | "random"> {
  /** Interface to listen on. @default {"127.0.0.1"} */
  host?: string;
  /** TCP port; 0 picks a free one. @default {8080} */
  port?: number;
  /** A custom worker command (`{socket}` is replaced with the socket path). */
  workerCmd?: string;
  /** Extra arguments for the built-in backend workers. */
  backendArgs?: string[];
  /** Client connections held at once. @default {10000} */
  maxConnections?: number;
  /** `dedicated` mode: path into the first parameter that gives the routing key. @default {"user_id"} */
  routeKey?: string;
  /** Milliseconds a new connection may take to send its first byte. @default {10000} */
  firstByteTimeout?: number;
  /** Unread output per client above which its requests stop being read. @default {4194304} */
  writeBufferLimit?: number;
  /** Legacy frames in flight per connection. @default {128} */
  legacyPipeline?: number;
  /** Milliseconds requests in flight may take to finish on stop. @default {10000} */
  drainTimeout?: number;
  /** Milliseconds workers get to exit after being told to, before SIGKILL. @default {5000} */
  shutdownGrace?: number;
  /** Called once ready, with the bound address. */
  onListening?: (address: string) => void;
  /** Stops the proxy as SIGTERM would. */
  signal?: AbortSignal;
  /** Stop (as on SIGTERM) when stdin closes: the parent that started us is gone. @default {false} */
  parentWatch?: boolean;
}

/** Addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * Runs the proxy until SIGINT/SIGTERM (or `signal`); resolves after a clean
 * stop.
 *
 * @throws {ProxyError} `NO_WORKERS` when the workers cannot start.
 * @throws {Deno.errors.AddrInUse} When the port is taken.
 */
export async function runProxy(options: RunProxyOptions): Promise<void> {
  const log = getLogger(["proxy"]);
  const host = options.host ?? "127.0.0.1";
  // A fresh private directory (0700): no other user can reach the workers.
  const socketDir = await Deno.makeTempDir({ prefix: "proxy-" });
  await Deno.chmod(socketDir, 0o700);
  const {
    host: _h,
    port: _p,
    workerCmd,
    backendArgs,
    routeKey,
    firstByteTimeout,
    writeBufferLimit,
    legacyPipeline,
    maxConnections: _m,
    drainTimeout,
    shutdownGrace,
    onListening,
    signal,
    parentWatch,
    ...rest
  } = options;
  try {
    const pool = new WorkerPool({
      ...rest,
      socketDir,
      commandLine: (socket) =>
        workerCommandLine({
          socket,
          ...(workerCmd === undefined ? {} : { workerCmd }),
          backendArgs: ["--log-level", "warning", ...(backendArgs ?? [])],
        }),
    });
    const server = new ProxyServer({
      address: { transport: "tcp", hostname: host, port: options.port ?? 8080 },
      pool,
      legacyHandler: serveLegacy,
      ...(options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize }),
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
      ...(routeKey === undefined ? {} : { routeKey }),
      ...(firstByteTimeout === undefined ? {} : { firstByteTimeout }),
      ...(writeBufferLimit === undefined ? {} : { writeBufferLimit }),
      ...(legacyPipeline === undefined ? {} : { legacyPipeline }),
    });
    let bound;
    try {
      bound = server.bind();
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new Error(
          `Cannot listen on ${host}:${options.port ?? 8080}: address already in use`,
          { cause: err },
        );
      }
      throw err;
    }
    if (!isLoopback(host)) log.warn(`Listening on ${host}: reachable from other machines`);
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
    };
    Deno.addSignalListener("SIGHUP", onHup);
    signal?.addEventListener("abort", () => stop("aborted"), { once: true });
    if (parentWatch) void watchParent(() => stop("parent gone"));
    try {
      await pool.start();
      server.serve();
      const size = pool.mode === "static"
        ? `${pool.size} worker${pool.size === 1 ? "" : "s"}`
        : `${pool.mode} pool of up to ${pool.size} workers`;
      log.info(`Proxy ${Deno.pid} listening on ${formatAddress(bound)} with ${size}`);
      onListening?.(formatAddress(bound));
      const why = await stopped;
      log.info(`Proxy stopping (${why}): draining requests in flight`);
      await server.close({
        ...(drainTimeout === undefined ? {} : { drainTimeout }),
        ...(shutdownGrace === undefined ? {} : { graceMs: shutdownGrace }),
      });
      log.info("Proxy stopped");
    } finally {
      Deno.removeSignalListener("SIGTERM", onSignal);
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGHUP", onHup);
      globalThis.removeEventListener("unhandledrejection", onUnhandled);
      await server.close({ drainTimeout: 0, graceMs: 0 });
    }
  } finally {
    await Deno.remove(socketDir, { recursive: true }).catch(() => {});
  }
}
