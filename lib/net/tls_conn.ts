/**
 * A `node:tls` socket seen as a `Deno.Conn`, so the framing code reads and
 * writes a TLS connection as it does any other.
 *
 * Why not `Deno.listenTls` / `Deno.startTls`: a Deno TLS connection closed
 * while its handshake is still running keeps its TCP socket open until the
 * peer sends something or leaves (its runtime finishes the handshake first),
 * so a peer that connects and stays silent holds a file descriptor for ever,
 * whatever time limit we set. Closing this one before its handshake
 * completes destroys its TCP socket at once.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

// Received bytes held while nobody reads; beyond, the socket is paused (TCP
// backpressure does the rest). Large, because Deno's node:tls loses an end
// of stream that arrives while paused: then only a later write (which
// fails) shows that the peer has gone, so pausing is kept for clients that
// really send far ahead of what they are answered.
const HIGH_WATER = 1024 * 1024;

// How long a clean TLS close (close_notify) may take before the socket is destroyed.
const CLOSE_GRACE_MS = 1000;

function netAddr(address: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: address ?? "", port: port ?? 0 };
}

/**
 * A TLS connection over a `node:tls` socket, with the `Deno.Conn` interface
 * (and `handshake()` as `Deno.TlsConn` has it). `close()` is idempotent.
 */
export class TlsSocketConn implements Deno.Conn<Deno.NetAddr> {
  /** This side's address. */
  readonly localAddr: Deno.NetAddr;
  /** The peer's address. */
  readonly remoteAddr: Deno.NetAddr;
  readonly #tls: TLSSocket;
  readonly #tcp: Socket;
  readonly #handshake: Promise<void>;
  readonly #chunks: Uint8Array[] = [];
  #offset = 0; // into #chunks[0]
  #buffered = 0;
  #paused = false;
  #reader: { p: Uint8Array; resolve: (n: number | null) => void } | null = null;
  #ended = false;
  #closed = false;
  #secure = false; // the handshake completed
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array<ArrayBufferLike>> | undefined;

  /**
   * @param tls The TLS socket (its handshake may still be running).
   * @param tcp The TCP socket under it.
   * @param secureEvent The event that ends the handshake: `secure` on a server, `secureConnect` on a client.
   */
  constructor(tls: TLSSocket, tcp: Socket, secureEvent: "secure" | "secureConnect") {
    this.#tls = tls;
    this.#tcp = tcp;
    this.localAddr = netAddr(tcp.localAddress, tcp.localPort);
    this.remoteAddr = netAddr(tcp.remoteAddress, tcp.remotePort);
    this.#handshake = new Promise<void>((resolve, reject) => {
      const fail = (err?: Error) => {
        cleanup();
        reject(err ?? new Error("connection closed during the TLS handshake"));
      };
      const done = () => {
        cleanup();
        resolve();
      };
      const closed = () => fail();
      const cleanup = () => {
        tls.off(secureEvent, done);
        tls.off("error", fail);
        tls.off("close", closed);
        tls.off("end", closed);
      };
      tls.once(secureEvent, done);
      tls.once("error", fail);
      tls.once("close", closed);
      // A peer that leaves before its handshake is done (or before it starts
      // one) never finishes it; Deno's node:tls then says "end", not "close".
      tls.once("end", closed);
    });
    this.#handshake.then(() => this.#secure = true, () => {}); // failures show in reads too
    tls.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    tls.on("end", () => this.#onEnd());
    tls.on("close", () => this.#onEnd());
    tls.on("error", () => this.#onEnd());
  }

  /** Resolves once the TLS handshake has completed; rejects when it failed. */
  handshake(): Promise<void> {
    return this.#handshake;
  }

  /** Turns Nagle's algorithm off (or on) on the TCP socket. */
  setNoDelay(noDelay = true): void {
    this.#tcp.setNoDelay(noDelay);
  }

  #onData(chunk: Uint8Array): void {
    const reader = this.#reader;
    if (reader && this.#buffered === 0) {
      this.#reader = null;
      const n = Math.min(reader.p.length, chunk.length);
      reader.p.set(chunk.subarray(0, n));
      if (n < chunk.length) this.#queue(chunk.subarray(n));
      reader.resolve(n);
      return;
    }
    this.#queue(chunk);
  }

  #queue(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered > HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.#tls.pause();
    }
  }

  #onEnd(): void {
    this.#ended = true;
    const reader = this.#reader;
    this.#reader = null;
    reader?.resolve(null);
  }

  /** Reads into `p`; null at the end of the stream (or once closed). */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#buffered > 0) return Promise.resolve(this.#take(p));
    if (this.#ended || this.#closed) return Promise.resolve(null);
    if (this.#reader) return Promise.reject(new Deno.errors.Busy("Cannot read: a read is pending"));
    return new Promise((resolve) => this.#reader = { p, resolve });
  }

  #take(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const k = Math.min(p.length - n, chunk.length - this.#offset);
      p.set(chunk.subarray(this.#offset, this.#offset + k), n);
      n += k;
      this.#offset += k;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    this.#buffered -= n;
    if (this.#paused && this.#buffered <= HIGH_WATER / 2) {
      this.#paused = false;
      this.#tls.resume();
    }
    return n;
  }

  /**
   * Writes `p`; resolves once it has been handed on (encrypted), so the
   * caller may reuse the bytes.
   */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.#tls.destroyed) {
      return Promise.reject(new Deno.errors.BadResource("Cannot write: connection closed"));
    }
    return new Promise((resolve, reject) => {
      this.#tls.write(p, (err) => err ? reject(err) : resolve(p.length));
    });
  }

  /** Ends the writing side (TLS close_notify); reads go on. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#tls.end(() => resolve()));
  }

  /**
   * Closes: after a completed handshake, with a clean TLS end (close_notify,
   * given at most a second); otherwise both sockets are destroyed at once.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onEnd();
    const tls = this.#tls;
    const tcp = this.#tcp;
    const destroy = () => {
      tls.destroy();
      tcp.destroy();
    };
    if (!this.#secure || tls.destroyed || tls.writableEnded) return destroy();
    const timer = setTimeout(destroy, CLOSE_GRACE_MS);
    Deno.unrefTimer(timer);
    tls.end(() => {
      clearTimeout(timer);
      destroy();
    });
  }

  /** Keeps the event loop alive while open (the default). */
  ref(): void {
    this.#tcp.ref();
  }

  /** Lets the event loop end while open. */
  unref(): void {
    this.#tcp.unref();
  }

  /** The received bytes as a stream. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const buf = new Uint8Array(16 * 1024);
        const n = await this.read(buf);
        if (n === null) controller.close();
        else controller.enqueue(buf.subarray(0, n));
      },
      cancel: () => this.close(),
    });
    return this.#readable;
  }

  /** A stream that writes to the connection. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    this.#writable ??= new WritableStream({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.closeWrite(),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  /** Closes (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
