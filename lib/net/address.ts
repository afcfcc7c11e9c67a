/**
 * Addresses: `HOST:PORT` for TCP, `unix:/path` for a Unix socket.
 *
 * @module
 */

import { ErrorCode, ProxyError } from "../protocol/errors.ts";
import { connectNode } from "./node_conn.ts";
import { connectTls, type TlsClientOptions } from "./tls.ts";

/** A TCP or Unix socket address. */
export type Address =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT` or `unix:/path`.
 *
 * @param text The address.
 * @returns The parsed address.
 * @throws {TypeError} When the text is not an address.
 *
 * @example Usage
 * ```ts
 * import { parseAddress } from "./address.ts";
 * console.log(parseAddress("127.0.0.1:8080")); // { transport: "tcp", hostname: "127.0.0.1", port: 8080 }
 * ```
 */
export function parseAddress(text: string): Address {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (path === "") throw new TypeError(`Cannot parse address "${text}": empty socket path`);
    return { transport: "unix", path };
  }
  const colon = text.lastIndexOf(":");
  if (colon <= 0) {
    throw new TypeError(`Cannot parse address "${text}": expected HOST:PORT or unix:/path`);
  }
  let hostname = text.slice(0, colon);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  return { transport: "tcp", hostname, port: parsePort(text.slice(colon + 1)) };
}

/**
 * Parses a TCP port number (0 to 65535).
 *
 * @throws {RangeError} When the text is not a port.
 */
export function parsePort(text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot parse port "${text}": expected an integer from 0 to 65535`);
  }
  return port;
}

/**
 * Formats an address the way {@linkcode parseAddress} reads it.
 *
 * @param address A TCP or Unix socket address.
 * @returns `HOST:PORT`, `[IPv6]:PORT` or `unix:/path`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatAddress } from "./address.ts";
 * assert.equal(formatAddress({ transport: "tcp", hostname: "::1", port: 8080 }), "[::1]:8080");
 * assert.equal(formatAddress({ transport: "unix", path: "/tmp/w.sock" }), "unix:/tmp/w.sock");
 * ```
 */
export function formatAddress(address: Address): string {
  if (address.transport === "unix") return `unix:${address.path}`;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/**
 * Opens a connection to `address`; TCP connections get `TCP_NODELAY`. Without
 * `Deno` (on Node), through `node:net`.
 */
export async function connect(address: Address): Promise<Deno.Conn> {
  if (typeof Deno === "undefined") return await connectNode(address);
  if (address.transport === "unix") {
    return await Deno.connect({ transport: "unix", path: address.path });
  }
  const conn = await Deno.connect({ hostname: address.hostname, port: address.port });
  conn.setNoDelay(true);
  return conn;
}

/** Listens on `address`. */
export function listen(address: Address): Deno.Listener {
  if (address.transport === "unix") return Deno.listen({ transport: "unix", path: address.path });
  return Deno.listen({ hostname: address.hostname, port: address.port });
}

/** The address a listener is bound to (the real port when 0 was asked for). */
export function listenerAddress(listener: Deno.Listener): Address {
  const addr = listener.addr;
  if (addr.transport === "unix" || addr.transport === "unixpacket") {
    return { transport: "unix", path: (addr as Deno.UnixAddr).path };
  }
  const net = addr as Deno.NetAddr;
  return { transport: "tcp", hostname: net.hostname, port: net.port };
}

/**
 * Accepts connections until the listener closes, handing each to `onConn`.
 * A failed accept (a client that reset before it was accepted, too many open
 * files) does not end the loop: only closing the listener does.
 */
export async function acceptEach(
  listener: Deno.Listener,
  onConn: (conn: Deno.Conn) => void,
): Promise<void> {
  while (true) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
      // Transient: back off briefly so a persistent one (EMFILE) does not spin.
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    // A TLS connection has no setNoDelay (its handshake comes later).
    if (conn.localAddr.transport === "tcp" && "setNoDelay" in conn) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // the peer is already gone; reading will tell
      }
    }
    onConn(conn);
  }
}

/** Options of {@linkcode connectWithin}. */
export interface ConnectWithinOptions {
  /** Milliseconds to wait; 0 waits as long as the OS does. @default {0} */
  timeout?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /** Speak TLS (TCP addresses only): the handshake is part of connecting. */
  tls?: TlsClientOptions;
}

/**
 * Connects to `address`, giving up after `timeout` or when `signal` aborts; a
 * connection that arrives too late is closed. With `tls`, the handshake
 * completes (within the same time) before it resolves.
 *
 * @throws {ProxyError} `CONNECT_FAILED` (the OS error as cause), `TLS_FAILED`, `TIMEOUT` or `ABORTED`.
 * @throws {TypeError} For `tls` with a Unix socket address.
 */
export async function connectWithin(
  address: string | Address,
  options: ConnectWithinOptions = {},
): Promise<Deno.Conn> {
  const addr = typeof address === "string" ? parseAddress(address) : address;
  const timeout = options.timeout ?? 0;
  const where = addr.transport === "unix" ? addr.path : `${addr.hostname}:${addr.port}`;
  const tls = options.tls;
  if (tls && addr.transport !== "tcp") {
    throw new TypeError(`Cannot connect to ${where} with TLS: not a TCP address`);
  }
  // Aborted when the attempt loses the race, so a TLS handshake in flight ends too.
  const giveUp = new AbortController();
  const attempt: Promise<Deno.Conn> = tls && addr.transport === "tcp"
    ? connectTls(addr, { ...tls, signal: giveUp.signal })
    : connect(addr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const lost = new Promise<never>((_, reject) => {
    if (timeout > 0) {
      timer = setTimeout(
        () =>
          reject(
            new ProxyError(
              ErrorCode.TIMEOUT,
              `Cannot connect to ${where}: no answer in ${timeout} ms`,
            ),
          ),
        timeout,
      );
    }
    onAbort = () =>
      reject(new ProxyError(ErrorCode.ABORTED, `Cannot connect to ${where}: aborted`));
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([attempt, lost]);
  } catch (err) {
    giveUp.abort();
    attempt.then((conn) => conn.close(), () => {}); // a connection that lost the race
    // connectTls's own errors, in the words of a plain connection's.
    if (
      err instanceof ProxyError && err.cause !== undefined &&
      (err.code === ErrorCode.TLS_FAILED || err.code === ErrorCode.CONNECT_FAILED)
    ) {
      throw new ProxyError(err.code, `Cannot connect to ${where}: ${err.message}`, { cause: err });
    }
    if (err instanceof ProxyError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new ProxyError(ErrorCode.CONNECT_FAILED, `Cannot connect to ${where}: ${reason}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
  }
}
