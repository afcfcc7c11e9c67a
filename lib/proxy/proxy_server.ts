/**
 * The front of the proxy: accepts clients (over TLS when given a
 * certificate), tells their protocol by the first byte (MessagePack-RPC or
 * the legacy protocol, both adapters over one framed-connection core), asks
 * for a token first when given some, hands each request to the dispatcher,
 * and answers `proxy.*` methods itself.
 *
 * @module
 */

import {
  acceptEach,
  type Address,
  formatAddress,
  listen,
  listenerAddress,
} from "../net/address.ts";
import { ConnectionSweeper, type Sweepable } from "../net/connection_sweeper.ts";
import { listenTls, type TlsServerCert } from "../net/tls.ts";
import type { TlsSocketConn } from "../net/tls_conn.ts";
import type { TokenVerifier } from "../auth/token_set.ts";
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeResult,
  ErrorCode,
  type ErrorFormat,
  errorToWire,
  LEGACY_TAG,
} from "../protocol/mod.ts";
import { parseRoutePath } from "../protocol/route_key.ts";
import type { Dispatcher, DispatchStats } from "../dispatch/dispatcher.ts";
import { getLogger } from "../log.ts";
import { ClientSession, type SessionAuth, type SessionContext } from "./client_session.ts";

export { PROXY_METHOD_PREFIX } from "./client_session.ts";

/** A connection served by the proxy, whatever its protocol. */
export interface ServedConnection {
  /** Writes what is owed, then closes. Idempotent. */
  end(): Promise<void>;
  /** Closes at once, dropping what is owed. Idempotent. */
  close(): void;
  /** Resolves once closed. */
  readonly done: Promise<void>;
  /** Its framed connection, for the time limits and byte counts. */
  readonly connection: Sweepable & { readonly bytesRead: number; readonly bytesWritten: number };
}

/** What a protocol handler other than MessagePack-RPC gets from the proxy. */
export interface ConnectionContext {
  /** Where requests go. */
  pool: Dispatcher;
  /** True once the proxy is stopping: new requests get a refusal. */
  draining: () => boolean;
  /** Largest message accepted. */
  maxMessageSize: number;
  /** Output held for a client above which its connection stops being read. */
  writeBufferLimit: number;
  /** Legacy frames in flight per connection. */
  legacyPipeline: number;
}

/**
 * Serves a connection whose first bytes are not MessagePack-RPC (the legacy
 * CCRPC protocol). `initial` holds the bytes already read.
 */
export type ConnectionHandler = (
  raw: Deno.Conn,
  initial: Uint8Array,
  context: ConnectionContext,
) => ServedConnection;

/** Options of {@linkcode ProxyServer}. */
export interface ProxyServerOptions {
  /** Where to listen. */
  address: Address;
  /** Where requests go. */
  pool: Dispatcher;
  /**
   * Serve clients over TLS with this certificate (TCP addresses only). The
   * handshake must complete within `firstByteTimeout`, before the protocol
   * is told by the first byte.
   */
  tls?: TlsServerCert;
  /**
   * Ask every client for a token: its first message must be `proxy.auth`
   * with one `auth` accepts, else it is answered `UNAUTHENTICATED` and closed.
   */
  auth?: TokenVerifier;
  /**
   * With `auth`: the largest message accepted before a connection has
   * authenticated (its `proxy.auth`). @default {16384}
   */
  authMaxMessageSize?: number;
  /** Milliseconds a client may take to authenticate, from its first byte. @default {10000} */
  authTimeout?: number;
  /**
   * With `auth`: serve legacy-protocol clients anyway (they have no way to
   * authenticate); otherwise they are closed at once.
   * @default {false}
   */
  legacyUnauthenticated?: boolean;
  /**
   * Read each request's routing key (`routeKey`) for the dispatcher: needed
   * by `dedicated` workers and `--balance hash`.
   * @default {false}
   */
  routed?: boolean;
  /** Largest message accepted from a client. @default {8388608} */
  maxMessageSize?: number;
  /** Client connections held at once; more are refused. @default {10000} */
  maxConnections?: number;
  /**
   * Serves connections whose first byte is `C` (the legacy `CCRPC` tag); a
   * MessagePack-RPC message always starts with an array marker instead.
   * Without it such a connection gets `INVALID_REQUEST`.
   */
  legacyHandler?: ConnectionHandler;
  /**
   * Output held for one client (answers it has not read yet) above which the
   * proxy stops reading its requests until it catches up.
   * @default {4194304}
   */
  writeBufferLimit?: number;
  /** Legacy frames in flight per connection; more wait unread. @default {128} */
  legacyPipeline?: number;
  /**
   * Milliseconds a new connection may take to send its first byte (which
   * tells the protocol) before it is closed.
   * @default {10000}
   */
  firstByteTimeout?: number;
  /** Milliseconds a message may take to arrive once begun; 0 = no limit. @default {30000} */
  messageTimeout?: number;
  /** Milliseconds a connection may sit idle between messages; 0 = no limit. @default {0} */
  clientIdleTimeout?: number;
  /** Requests one connection may have in flight before it stops being read. @default {1024} */
  maxInFlightPerConnection?: number;
  /**
   * `dedicated` mode: the path into the first parameter that gives a
   * request's routing key (see `readRouteKey`). @default {"user_id"}
   */
  routeKey?: string;
  /** How errors the proxy makes are written. @default {"map"} */
  errorFormat?: ErrorFormat;
  /**
   * Serve the `proxy.*` methods that change state (`proxy.reload`); without
   * it they are answered `FORBIDDEN`. `proxy.stats` is always served.
   * @default {false}
   */
  controlMethods?: boolean;
  /** What `proxy.reload` does. @default {the pool's rolling restart} */
  reload?: () => Promise<unknown>;
}

/** What `proxy.stats` answers. */
export interface ProxyStats extends DispatchStats {
  pid: number;
  uptime_s: number;
  /** The proxy process's own memory, in MiB. */
  memory: { rss_mb: number; heap_used_mb: number; heap_total_mb: number; external_mb: number };
  connections: {
    open: number;
    total: number;
    refused: number;
    message_timeouts: number;
    idle_timeouts: number;
    /** TLS handshakes that failed or did not finish within the first-byte timeout. */
    tls_failures: number;
    /** Connections refused `UNAUTHENTICATED` (a token not accepted, or another message first). */
    auth_failures: number;
    /** Connections closed for not authenticating within the auth timeout. */
    auth_timeouts: number;
    /** Legacy-protocol connections closed because authentication is on. */
    legacy_refused: number;
  };
  /** Bytes from and to clients. */
  bytes: { received: number; sent: number };
}

const log = getLogger(["proxy"]);

/**
 * Listens for clients and routes their requests to the pool.
 */
export class ProxyServer {
  readonly #options: ProxyServerOptions;
  readonly #pool: Dispatcher;
  #listener: Deno.Listener | null = null;
  readonly #conns = new Set<ServedConnection>();
  readonly #sniffing = new Set<Deno.Conn>();
  #draining = false;
  #closing: Promise<void> | null = null;
  #total = 0;
  #refused = 0;
  #messageTimeouts = 0;
  #idleTimeouts = 0;
  #bytesReceived = 0; // by connections closed; open ones are added when read
  #bytesSent = 0;
  #tlsFailures = 0;
  #authFailures = 0;
  #authTimeouts = 0;
  #legacyRefused = 0;
  #closedSinceGc = 0;
  #gcTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #started = performance.now();
  readonly #sessionContext: SessionContext;
  readonly #sweeper: ConnectionSweeper;

  /** @param options Address, pool and limits. */
  constructor(options: ProxyServerOptions) {
    this.#options = options;
    this.#pool = options.pool;
    const routePath = parseRoutePath(options.routeKey ?? "user_id");
    const auth: SessionAuth | undefined = options.auth && {
      tokens: options.auth,
      timeoutMs: options.authTimeout ?? 10_000,
      maxMessageSize: options.authMaxMessageSize ?? 16 * 1024,
      onFailure: (why) => why === "timeout" ? this.#authTimeouts++ : this.#authFailures++,
    };
    this.#sessionContext = {
      dispatch: options.pool,
      draining: () => this.#draining,
      local: (session, msgid, method) => this.#answerLocally(session, msgid, method),
      routePath: options.routed ? routePath : undefined,
      errorFormat: options.errorFormat ?? "map",
      maxInFlight: options.maxInFlightPerConnection ?? 1024,
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      writeBufferLimit: options.writeBufferLimit ?? 4 * 1024 * 1024,
      auth,
    };
    this.#sweeper = new ConnectionSweeper({
      limits: {
        messageTimeout: options.messageTimeout ?? 30_000,
        idleTimeout: options.clientIdleTimeout ?? 0,
      },
      onSwept: (reason) => {
        if (reason === "message-timeout") this.#messageTimeouts++;
        else if (reason === "idle-timeout") this.#idleTimeouts++;
      },
    });
  }

  /**
   * Binds the listening socket (without accepting yet), so a taken port is
   * reported before any worker starts.
   *
   * @returns The bound address.
   * @throws {Deno.errors.AddrInUse} When the address is taken.
   * @throws {Error} When the TLS certificate or key is unusable.
   */
  async bind(): Promise<Address> {
    const { address, tls } = this.#options;
    if (tls && address.transport !== "tcp") {
      throw new TypeError(`Cannot listen with TLS on ${formatAddress(address)}: not TCP`);
    }
    this.#listener = tls && address.transport === "tcp"
      ? await listenTls(address, tls)
      : listen(address);
    return listenerAddress(this.#listener);
  }

  /** Starts accepting clients (after {@linkcode ProxyServer.bind}). */
  serve(): void {
    const listener = this.#listener;
    if (!listener) throw new Error("Cannot serve: bind() first");
    void this.#accept(listener);
  }

  /** True once stopping: new connections and requests are refused. */
  get draining(): boolean {
    return this.#draining;
  }

  /** The bound address, as text. */
  get address(): string {
    return this.#listener ? formatAddress(listenerAddress(this.#listener)) : "";
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    const max = this.#options.maxConnections ?? 10_000;
    await acceptEach(listener, (raw) => {
      if (this.#draining || this.#conns.size + this.#sniffing.size >= max) {
        this.#refused++;
        raw.close();
      } else void this.#sniff(raw);
    });
  }

  // Reads the first bytes to tell the legacy protocol from MessagePack-RPC.
  async #sniff(raw: Deno.Conn): Promise<void> {
    // Counted as open while silent, so idle connections cannot pile up past the limit.
    this.#sniffing.add(raw);
    this.#total++;
    const first = new Uint8Array(1024);
    // A client that connects and says nothing (or never completes its TLS
    // handshake) is dropped after a while.
    const timer = setTimeout(() => closeQuietly(raw), this.#options.firstByteTimeout ?? 10_000);
    let n: number | null = null;
    try {
      if (!this.#options.tls || await this.#handshake(raw as TlsSocketConn)) {
        n = await raw.read(first);
      }
    } catch {
      n = null;
    } finally {
      clearTimeout(timer);
    }
    this.#sniffing.delete(raw);
    if (n === null || this.#closing) {
      closeQuietly(raw);
      return;
    }
    const initial = first.slice(0, n);
    // 'C' (0x43) never starts a MessagePack-RPC message (always an array), so
    // any such connection is legacy; its handler answers a bad tag with -1.
    const legacy = this.#options.legacyHandler;
    let served: ServedConnection;
    if (legacy && initial[0] === LEGACY_TAG[0]) {
      // The legacy protocol has no way to send a token.
      if (this.#options.auth && !this.#options.legacyUnauthenticated) {
        this.#legacyRefused++;
        log.debug("Refused a legacy-protocol connection: authentication is on");
        closeQuietly(raw);
        return;
      }
      served = legacy(raw, initial, {
        pool: this.#pool,
        draining: () => this.#draining,
        maxMessageSize: this.#options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
        writeBufferLimit: this.#options.writeBufferLimit ?? 4 * 1024 * 1024,
        legacyPipeline: this.#options.legacyPipeline ?? 128,
      });
    } else {
      const session = new ClientSession(this.#total, raw, this.#sessionContext, initial);
      void session.run();
      served = session;
    }
    this.#conns.add(served);
    this.#sweeper.add(served.connection);
    void served.done.then(() => {
      this.#bytesReceived += served.connection.bytesRead;
      this.#bytesSent += served.connection.bytesWritten;
      this.#conns.delete(served);
      this.#sweeper.delete(served.connection);
      this.#afterClose();
    });
  }

  // A failed handshake concerns that client only: counted, logged at debug
  // (scanners make many), and its connection closed.
  async #handshake(raw: TlsSocketConn): Promise<boolean> {
    try {
      await raw.handshake();
      return true;
    } catch (err) {
      this.#tlsFailures++;
      const peer = raw.remoteAddr;
      log.debug(
        `TLS handshake with ${peer.hostname}:${peer.port} failed: ${(err as Error).message}`,
      );
      return false;
    }
  }

  // Thousands of connections gone leave their memory to a major GC that an
  // idle process may not run for a long time: run one soon after, when the
  // runtime exposes it (`--v8-flags=--expose-gc`, as the tasks start it).
  #afterClose(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== "function" || ++this.#closedSinceGc < 1000 || this.#gcTimer) return;
    this.#gcTimer = setTimeout(() => {
      this.#closedSinceGc = 0;
      gc();
      // V8 gives the emptied pages back to the system in the next one.
      this.#gcTimer = setTimeout(() => {
        this.#gcTimer = undefined;
        gc();
      }, 1000);
    }, 2000);
  }

  // The proxy's own methods. No params are needed by any of them, so none
  // are decoded: every such request is answered, whatever its params hold.
  #answerLocally(session: ClientSession, msgid: number, method: string): void {
    const answer = (result: unknown) => {
      if (session.closed) return;
      try {
        session.reply(encodeResult(msgid, result));
      } catch (err) {
        session.fail(msgid, errorToWire(err));
      }
    };
    switch (method) {
      case "proxy.stats":
        // Memory is read on demand (a ps run when /proc is not readable).
        // Stats are answered even when memory cannot be read.
        void this.#pool.readMemory().catch(() => {}).then(() => answer(this.stats()));
        return;
      case "proxy.reload":
        if (!this.#options.controlMethods) {
          session.fail(msgid, {
            code: ErrorCode.FORBIDDEN,
            message:
              `Cannot call ${method}: control methods are off (start the proxy with --control-methods, or send SIGHUP)`,
          });
          return;
        }
        (this.#options.reload ?? (() => this.#pool.reload()))().then(
          answer,
          (err) => !session.closed && session.fail(msgid, errorToWire(err)),
        );
        return;
      default:
        session.fail(msgid, {
          code: ErrorCode.METHOD_NOT_FOUND,
          message: `Cannot call ${method}: no such proxy method (the "proxy." prefix is reserved)`,
        });
    }
  }

  /** The proxy's state. */
  stats(): ProxyStats {
    let received = this.#bytesReceived;
    let sent = this.#bytesSent;
    for (const c of this.#conns) {
      received += c.connection.bytesRead;
      sent += c.connection.bytesWritten;
    }
    return {
      pid: Deno.pid,
      uptime_s: Math.round((performance.now() - this.#started) / 10) / 100,
      memory: memory(),
      connections: {
        open: this.#conns.size + this.#sniffing.size,
        total: this.#total,
        refused: this.#refused,
        message_timeouts: this.#messageTimeouts,
        idle_timeouts: this.#idleTimeouts,
        tls_failures: this.#tlsFailures,
        auth_failures: this.#authFailures,
        auth_timeouts: this.#authTimeouts,
        legacy_refused: this.#legacyRefused,
      },
      bytes: { received, sent },
      ...this.#pool.stats(),
    };
  }

  /**
   * Graceful stop: stops accepting, refuses new requests with
   * `SHUTTING_DOWN`, waits up to `drainTimeout` ms for requests in flight,
   * writes out their answers, closes clients, then stops the workers
   * (SIGKILL after `graceMs`). Idempotent.
   */
  close(options: { drainTimeout?: number; graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(options);
    return this.#closing;
  }

  async #close(options: { drainTimeout?: number; graceMs?: number }): Promise<void> {
    this.#draining = true;
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    for (const raw of this.#sniffing) closeQuietly(raw);
    const grace = options.graceMs ?? 5_000;
    await this.#pool.idle(AbortSignal.timeout(options.drainTimeout ?? 10_000));
    await this.#pool.close({ graceMs: grace });
    // Answers owed go out, but a client that does not read gets `grace` ms,
    // not the power to hold the proxy open.
    const conns = [...this.#conns];
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(conns.map((c) => c.end())),
      new Promise((resolve) => timer = setTimeout(resolve, grace)),
    ]);
    clearTimeout(timer);
    for (const c of conns) c.close();
    this.#sweeper.close();
    clearTimeout(this.#gcTimer);
    log.debug("Front end closed");
  }
}

function memory(): ProxyStats["memory"] {
  const m = Deno.memoryUsage();
  const mb = (n: number) => Math.round(n / 104857.6) / 10;
  return {
    rss_mb: mb(m.rss),
    heap_used_mb: mb(m.heapUsed),
    heap_total_mb: mb(m.heapTotal),
    external_mb: mb(m.external),
  };
}

function closeQuietly(raw: Deno.Conn): void {
  try {
    raw.close();
  } catch {
    // closed already
  }
}
