/**
 * The front of the proxy: accepts MessagePack-RPC clients and hands each
 * request to the worker pool; answers `proxy.*` methods itself.
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
import { FrameConnection } from "../net/frame_connection.ts";
import {
  createEnvelope,
  decodeMessage,
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeError,
  encodeResult,
  ErrorCode,
  errorToWire,
  type InvalidMessageError,
  LEGACY_TAG,
  NOTIFICATION,
  peekRequestMsgid,
  readEnvelope,
  REQUEST,
  RESPONSE,
} from "../protocol/mod.ts";
import type { PoolStats } from "../pool/pool_options.ts";
import type { WorkerPool } from "../pool/worker_pool.ts";
import { ClientSession } from "./client_session.ts";
import { parseRoutePath, routeKey } from "./route_key.ts";

/** Method names starting with this are answered by the proxy, never forwarded. */
export const PROXY_METHOD_PREFIX = "proxy.";

/** A connection served by the proxy, whatever its protocol. */
export interface ServedConnection {
  /** Writes what is owed, then closes. Idempotent. */
  end(): Promise<void>;
  /** Closes at once, dropping what is owed. Idempotent. */
  close(): void;
  /** Resolves once closed. */
  readonly done: Promise<void>;
}

/** What a protocol handler other than MessagePack-RPC gets from the proxy. */
export interface ConnectionContext {
  /** The workers. */
  pool: WorkerPool;
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
  /** The workers. */
  pool: WorkerPool;
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
   * With a `legacyHandler`: milliseconds a new connection may take to send
   * its first byte (which tells the protocol) before it is closed.
   * @default {10000}
   */
  firstByteTimeout?: number;
  /**
   * `dedicated` mode: the path into the first parameter that gives a
   * request's routing key (see `routeKey`). @default {"user_id"}
   */
  routeKey?: string;
}

/** What `proxy.stats` answers. */
export interface ProxyStats extends PoolStats {
  pid: number;
  uptime_s: number;
  connections: { open: number; total: number; refused: number };
}

const envelope = createEnvelope();

/**
 * Listens for clients and routes their requests to the pool.
 */
export class ProxyServer {
  readonly #options: ProxyServerOptions;
  readonly #pool: WorkerPool;
  #listener: Deno.Listener | null = null;
  readonly #sessions = new Set<ClientSession>();
  readonly #conns = new Set<ServedConnection>();
  readonly #sniffing = new Set<Deno.Conn>();
  #draining = false;
  #closing: Promise<void> | null = null;
  #nextSession = 1;
  #refused = 0;
  readonly #started = performance.now();
  readonly #routePath: string[];

  /** @param options Address, pool and limits. */
  constructor(options: ProxyServerOptions) {
    this.#options = options;
    this.#pool = options.pool;
    this.#routePath = parseRoutePath(options.routeKey ?? "user_id");
  }

  /**
   * Binds the listening socket (without accepting yet), so a taken port is
   * reported before any worker starts.
   *
   * @returns The bound address.
   * @throws {Deno.errors.AddrInUse} When the address is taken.
   */
  bind(): Address {
    this.#listener = listen(this.#options.address);
    return listenerAddress(this.#listener);
  }

  /** Starts accepting clients (after {@linkcode ProxyServer.bind}). */
  serve(): void {
    const listener = this.#listener;
    if (!listener) throw new Error("Cannot serve: bind() first");
    void this.#accept(listener);
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
      } else if (this.#options.legacyHandler) void this.#sniff(raw, this.#options.legacyHandler);
      else this.#serveClient(raw, undefined);
    });
  }

  // Reads the first bytes to tell the legacy protocol from MessagePack-RPC.
  async #sniff(raw: Deno.Conn, legacy: ConnectionHandler): Promise<void> {
    // Counted as open while silent, so idle connections cannot pile up past the limit.
    this.#sniffing.add(raw);
    const first = new Uint8Array(4096);
    // A client that connects and says nothing is dropped after a while.
    const timer = setTimeout(() => raw.close(), this.#options.firstByteTimeout ?? 10_000);
    let n: number | null;
    try {
      n = await raw.read(first);
    } catch {
      n = null;
    } finally {
      clearTimeout(timer);
    }
    this.#sniffing.delete(raw);
    if (n === null || this.#closing) {
      try {
        raw.close();
      } catch {
        // closed by the timeout already
      }
      return;
    }
    const initial = first.subarray(0, n);
    // 'C' (0x43) never starts a MessagePack-RPC message (always an array), so
    // any such connection is legacy; its handler answers a bad tag with -1.
    if (initial[0] === LEGACY_TAG[0]) {
      const served = legacy(raw, initial, {
        pool: this.#pool,
        draining: () => this.#draining,
        maxMessageSize: this.#options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
        writeBufferLimit: this.#options.writeBufferLimit ?? 4 * 1024 * 1024,
        legacyPipeline: this.#options.legacyPipeline ?? 128,
      });
      this.#conns.add(served);
      void served.done.then(() => this.#conns.delete(served));
    } else this.#serveClient(raw, initial);
  }

  #serveClient(raw: Deno.Conn, initial: Uint8Array | undefined): void {
    const session = new ClientSession(this.#nextSession++);
    const pool = this.#pool;
    const routePath = pool.mode === "dedicated" ? this.#routePath : undefined;
    const conn = new FrameConnection(raw, {
      ...(this.#options.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#options.maxMessageSize }),
      ...(initial === undefined ? {} : { initial }),
      ...(this.#options.writeBufferLimit === undefined
        ? {}
        : { highWaterMark: this.#options.writeBufferLimit }),
      onFrame: (frame) => {
        try {
          readEnvelope(frame, envelope);
        } catch (err) {
          const e = err as InvalidMessageError;
          if (e.msgid !== undefined) conn.write(encodeError(e.msgid, e.toWire()));
          // Nothing after it is trusted; answers owed for earlier requests still go out.
          conn.stopReading();
          session.onEof();
          return;
        }
        if (envelope.type === REQUEST) {
          session.expect();
          if (envelope.method.startsWith(PROXY_METHOD_PREFIX)) this.#answerLocally(session, frame);
          else if (this.#draining) {
            session.fail(envelope.msgid, {
              code: ErrorCode.SHUTTING_DOWN,
              message: "Cannot forward request: the proxy is shutting down",
            });
          } else if (routePath) {
            pool.submit(
              session,
              envelope.msgid,
              envelope.method,
              frame,
              envelope.tail,
              this.#keyOf(frame, routePath),
            );
          } else pool.submit(session, envelope.msgid, envelope.method, frame, envelope.tail);
        } else if (envelope.type === NOTIFICATION && !this.#draining) {
          pool.notify(
            session,
            envelope.method,
            frame,
            routePath ? this.#keyOf(frame, routePath) : undefined,
          );
        }
      },
      onProtocolError: (err, partial) => {
        const msgid = peekRequestMsgid(partial);
        if (msgid !== undefined) conn.write(encodeError(msgid, err.toWire()));
      },
      onEof: () => session.onEof(),
      onClose: () => {
        this.#sessions.delete(session);
        this.#conns.delete(conn);
        pool.forget(session);
      },
    });
    session.attach(conn);
    this.#sessions.add(session);
    this.#conns.add(conn);
    conn.run().catch(() => conn.close());
  }

  // Dedicated mode only: the params must be decoded to find the key.
  #keyOf(frame: Uint8Array, path: string[]): string | undefined {
    try {
      const msg = decodeMessage(frame);
      return msg.type === RESPONSE ? undefined : routeKey(msg.params, path);
    } catch {
      return undefined;
    }
  }

  #answerLocally(session: ClientSession, frame: Uint8Array): void {
    const msg = decodeMessage(frame);
    if (msg.type !== REQUEST) return;
    switch (msg.method) {
      case "proxy.stats":
        // Memory is read on demand (a ps run when /proc is not readable).
        // Stats are answered even when memory cannot be read.
        void this.#pool.readMemory().catch(() => {}).then(() =>
          !session.closed && session.reply(encodeResult(msg.msgid, this.stats()))
        );
        return;
      case "proxy.reload":
        this.#pool.reload().then(
          (result) => !session.closed && session.reply(encodeResult(msg.msgid, result)),
          (err) => !session.closed && session.fail(msg.msgid, errorToWire(err)),
        );
        return;
      default:
        session.fail(msg.msgid, {
          code: ErrorCode.METHOD_NOT_FOUND,
          message:
            `Cannot call ${msg.method}: no such proxy method (the "proxy." prefix is reserved)`,
        });
    }
  }

  /** The proxy's state. */
  stats(): ProxyStats {
    return {
      pid: Deno.pid,
      uptime_s: Math.round((performance.now() - this.#started) / 10) / 100,
      connections: { open: this.#conns.size, total: this.#nextSession - 1, refused: this.#refused },
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
    for (const raw of this.#sniffing) {
      try {
        raw.close();
      } catch {
        // closed already
      }
    }
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
  }
}
