/**
 * A connection on Node's `node:net`, with the four calls of `Deno.Conn` that
 * the framed-connection core uses (`read`, `write`, `close`, `closeWrite`),
 * so the client side runs on Node as it does on Deno. {@linkcode connect}
 * picks it when there is no `Deno`.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { Address } from "./address.ts";

/** What `FrameConnection` and `BatchedWriter` call on a connection. */
export interface ByteConn {
  /** Reads into `buf`; the number of bytes read, or null at the end of input. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes `buf`; resolves with its length once the bytes are handed to the OS. */
  write(buf: Uint8Array): Promise<number>;
  /** Closes both directions at once. Idempotent. */
  close(): void;
  /** Ends the writing side (the peer reads end of input); reading goes on. */
  closeWrite(): Promise<void>;
}

// Received bytes held while nobody reads; past this the socket is paused, so
// a peer that writes faster than we read is held back by TCP, not memory.
const HIGH_WATER = 64 * 1024;

/** A `node:net` socket seen as a {@linkcode ByteConn}. */
export class NodeConn implements ByteConn {
  readonly #socket: Socket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  /** @param socket A connected socket; it is owned from now on. */
  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(buf: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended || this.#socket.destroyed) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < buf.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, buf.length - n);
      buf.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered < HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(buf: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#socket.destroyed) {
        reject(this.#error ?? new Error("Cannot write: connection closed"));
        return;
      }
      // The callback runs once Node is done with `buf`: the caller may reuse it.
      this.#socket.write(buf, (err) => err ? reject(err) : resolve(buf.length));
    });
  }

  close(): void {
    this.#socket.destroy();
    this.#notify();
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }
}

/**
 * Connects with `node:net` (TCP with `TCP_NODELAY`, or a Unix socket).
 *
 * @param address Where to connect.
 * @returns The connection, typed as the `Deno.Conn` the core takes: only its
 * {@linkcode ByteConn} calls may be used.
 * @throws {Error} The OS error (e.g. `ECONNREFUSED`).
 */
export async function connectNode(address: Address): Promise<Deno.Conn> {
  const net = await import("node:net");
  const socket = address.transport === "unix"
    ? net.createConnection({ path: address.path })
    : net.createConnection({ host: address.hostname, port: address.port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve();
    });
  });
  return new NodeConn(socket) as unknown as Deno.Conn;
}
