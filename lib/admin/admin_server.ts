/**
 * The admin endpoint (`--admin`): HTTP for operators and their tools, served
 * with `Deno.serve`, apart from the client port.
 *
 * - `GET /metrics`: Prometheus text format.
 * - `GET /status`: what `proxy.stats` answers, as JSON.
 * - `GET /healthz`: 200 while the process runs.
 * - `GET /readyz`: 200 when a worker or upstream can take a request; 503
 *   while draining or when none can.
 * - `POST /reload`: re-reads the config file and replaces the workers one at
 *   a time; needs `Authorization: Bearer TOKEN` when tokens are set.
 *
 * @module
 */

import { type Address, formatAddress } from "../net/address.ts";
import { getLogger } from "../log.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/prometheus.ts";
import type { TokenVerifier } from "../auth/token_set.ts";

/** What a reload reports. */
export interface ReloadReport {
  /** False when the config file was refused (the running one stays). */
  ok: boolean;
  /** Why it was refused. */
  error?: string;
  /** Options changed and applied. */
  applied?: string[];
  /** Options changed that wait for a restart (as flags). */
  restart_needed?: string[];
  /** Workers replaced, and replacements that failed to start. */
  replaced?: number;
  failed?: number;
}

/** Options of {@linkcode AdminServer}. */
export interface AdminServerOptions {
  /** Where to listen (TCP or `unix:`). */
  address: Address;
  /** The Prometheus exposition. */
  metrics: () => Promise<string> | string;
  /** The proxy's state, as `proxy.stats` answers it. */
  status: () => Promise<unknown> | unknown;
  /** Null when ready, else why not (draining, no worker or upstream). */
  notReady: () => string | null;
  /** A reload (SIGHUP does the same). */
  reload: () => Promise<ReloadReport>;
  /** Tokens that may `POST /reload` (read at each request); none: anyone who can connect may. */
  tokens?: () => TokenVerifier | undefined;
}

const log = getLogger(["admin"]);

function text(body: string, status = 200): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The admin HTTP server. Call {@linkcode AdminServer.start}, then `close()`. */
export class AdminServer {
  readonly #o: AdminServerOptions;
  #server: Deno.HttpServer<Deno.NetAddr | Deno.UnixAddr> | null = null;
  #closing: Promise<void> | null = null;
  #unauthorized = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;

  /** @param options Where to listen and what to serve. */
  constructor(options: AdminServerOptions) {
    this.#o = options;
  }

  /**
   * Listens.
   *
   * @returns The bound address, as text (`127.0.0.1:9090`).
   * @throws {Error} When the address is taken.
   */
  start(): string {
    this.#listen(this.#o.address);
    const bound = this.#server!.addr;
    const at = "path" in bound
      ? `unix:${bound.path}`
      : formatAddress({ transport: "tcp", hostname: bound.hostname, port: bound.port });
    // A restart binds the same port, even when 0 was asked for.
    const again: Address = "path" in bound
      ? { transport: "unix", path: bound.path }
      : { transport: "tcp", hostname: bound.hostname, port: bound.port };
    this.#watch(again);
    return at;
  }

  #listen(a: Address): void {
    const handler = (req: Request) => this.#handle(req);
    const onListen = () => {};
    const onError = (err: unknown) => {
      log.error(`Admin request failed: ${(err as Error).message ?? err}`);
      return new Response("internal error\n", { status: 500 });
    };
    try {
      this.#server = a.transport === "unix"
        ? Deno.serve({ path: a.path, onListen, onError, handler })
        : Deno.serve({ hostname: a.hostname, port: a.port, onListen, onError, handler });
    } catch (err) {
      throw new Error(
        `Cannot listen on --admin ${formatAddress(a)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  // The listener can die under us (out of file descriptors, say): then it is
  // started again, with a growing pause, rather than gone for good.
  #watch(a: Address): void {
    const server = this.#server!;
    server.finished.then(() => "closed", (err) => (err as Error).message).then((why) => {
      if (this.#closing === null && this.#server === server) this.#restart(a, why);
    });
  }

  #restart(a: Address, why: string): void {
    this.#failures++;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.#failures, 7));
    log.error(`Admin endpoint stopped (${why}); listening again in ${delay} ms`);
    this.#restartTimer = setTimeout(() => {
      if (this.#closing) return;
      try {
        this.#listen(a);
      } catch (err) {
        this.#restart(a, (err as Error).message);
        return;
      }
      this.#watch(a);
      log.info(`Admin endpoint listening again on ${formatAddress(a)}`);
    }, delay);
  }

  async #handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const get = req.method === "GET" || req.method === "HEAD";
    try {
      switch (path) {
        case "/metrics":
          if (!get) return methodNotAllowed("GET");
          return new Response(await this.#o.metrics(), {
            headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
          });
        case "/status":
          if (!get) return methodNotAllowed("GET");
          return json(await this.#o.status());
        case "/healthz":
          if (!get) return methodNotAllowed("GET");
          return text("ok");
        case "/readyz": {
          if (!get) return methodNotAllowed("GET");
          const why = this.#o.notReady();
          return why === null ? text("ready") : text(`not ready: ${why}`, 503);
        }
        case "/reload": {
          if (req.method !== "POST") return methodNotAllowed("POST");
          const tokens = this.#o.tokens?.();
          if (tokens) {
            const auth = req.headers.get("authorization") ?? "";
            const m = /^Bearer\s+(.+)$/i.exec(auth);
            if (!m || !tokens.verify(new TextEncoder().encode(m[1]!.trim()))) {
              this.#unauthorized++;
              return new Response("unauthorized: send Authorization: Bearer TOKEN\n", {
                status: 401,
                headers: { "www-authenticate": 'Bearer realm="proxy admin"' },
              });
            }
          }
          const report = await this.#o.reload();
          return json(report, report.ok ? 200 : 400);
        }
        default:
          return text("not found: try /metrics, /status, /healthz, /readyz or POST /reload", 404);
      }
    } catch (err) {
      log.error(`Admin ${req.method} ${path} failed: ${(err as Error).stack ?? err}`);
      return text(`error: ${(err as Error).message}`, 500);
    }
  }

  /** Requests refused for want of a token. */
  get unauthorized(): number {
    return this.#unauthorized;
  }

  /** Stops listening and ends open requests. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#restartTimer);
      const server = this.#server;
      if (!server) return;
      await server.shutdown();
    })();
    return this.#closing;
  }
}

function methodNotAllowed(allow: string): Response {
  return new Response(`method not allowed: use ${allow}\n`, {
    status: 405,
    headers: { allow },
  });
}
