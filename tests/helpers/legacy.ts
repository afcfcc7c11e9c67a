/**
 * Byte helpers and a raw reader of legacy CCRPC replies, shared by the
 * legacy protocol tests.
 *
 * @module
 */

import { type LegacyFrame, LegacyFrameDecoder } from "../../lib/protocol/legacy_frame.ts";
import { splitHostPort } from "./process.ts";

/** Bytes from hex text (white space ignored). */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The parts, one after the other. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A connection that writes any bytes and reads legacy frames. */
export class LegacyReplies implements AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #decoder = new LegacyFrameDecoder();
  readonly #frames: LegacyFrame[] = [];
  #eof = false;

  /** @param conn An open connection (the client's side). */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Connects to `HOST:PORT`. */
  static async open(address: string): Promise<LegacyReplies> {
    const conn = await Deno.connect(splitHostPort(address));
    conn.setNoDelay(true);
    return new LegacyReplies(conn);
  }

  /** Writes `bytes` exactly as given. */
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** The next frame, or null once the other side has closed the connection. */
  async next(): Promise<LegacyFrame | null> {
    while (this.#frames.length === 0 && !this.#eof) {
      const n = await this.#conn.read(this.#decoder.reserve()).catch(() => null);
      if (n === null) {
        this.#eof = true;
        break;
      }
      this.#decoder.commit(n);
      for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
        this.#frames.push({ header: f.header, body: f.body.slice() });
      }
    }
    return this.#frames.shift() ?? null;
  }

  /** Every frame until the other side closes. */
  async all(): Promise<LegacyFrame[]> {
    const out: LegacyFrame[] = [];
    for (let f = await this.next(); f !== null; f = await this.next()) out.push(f);
    return out;
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
