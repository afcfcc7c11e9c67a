/**
 * A bare MessagePack connection for tests that must send bytes a real client
 * never would (malformed frames, oversize messages, chosen msgids) and look
 * at exactly what comes back.
 *
 * @example Usage
 * ```ts ignore
 * import { RawConnection } from "./helpers/raw_conn.ts";
 * await using conn = await RawConnection.open("unix:/tmp/w.sock");
 * await conn.send([0, 7, "ping", []]);
 * console.log(await conn.receive()); // [1, 7, null, "pong"]
 * ```
 *
 * @module
 */

import { decodeValue, encodeValue } from "../../lib/protocol/mod.ts";
import { FrameDecoder } from "../../lib/protocol/frame_decoder.ts";
import { DEFAULT_TIMEOUT_MS } from "./process.ts";

const pack = (value: unknown) => encodeValue(value);
const unpackr = { unpack: (frame: Uint8Array) => decodeValue(frame) };

/** A connection that writes raw bytes and reads whole MessagePack values. */
export class RawConnection implements AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #decoder = new FrameDecoder();
  readonly #received: unknown[] = [];
  #eof = false;
  #closed = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /**
   * Connects to `unix:/path` or `HOST:PORT`.
   *
   * @param address As logged by a server's `listening on ADDRESS` line.
   */
  static async open(address: string): Promise<RawConnection> {
    if (address.startsWith("unix:")) {
      return new RawConnection(await Deno.connect({ transport: "unix", path: address.slice(5) }));
    }
    const colon = address.lastIndexOf(":");
    const hostname = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    return new RawConnection(
      await Deno.connect({ hostname, port: Number(address.slice(colon + 1)) }),
    );
  }

  /** Writes `bytes` exactly as given. */
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Encodes `value` (e.g. `[0, msgid, method, params]`) and writes it. */
  async send(value: unknown): Promise<void> {
    await this.write(pack(value));
  }

  /** Closes the writing side: the peer reads end of file, answers can still arrive. */
  async closeWrite(): Promise<void> {
    await this.#conn.closeWrite();
  }

  /**
   * The next MessagePack value received, or `null` once the peer has closed
   * the connection.
   *
   * @throws {Error} When nothing arrives within `timeoutMs`.
   */
  async receive(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.#received.length === 0 && !this.#eof) {
      await this.#readOnce(deadline - Date.now());
    }
    return this.#received.length > 0 ? this.#received.shift() : null;
  }

  /** Every value received until the peer closes the connection. */
  async receiveAll(timeoutMs: number = DEFAULT_TIMEOUT_MS): Promise<unknown[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#eof) await this.#readOnce(deadline - Date.now());
    return this.#received.splice(0);
  }

  async #readOnce(timeoutMs: number): Promise<void> {
    if (timeoutMs <= 0) throw new Error("Cannot receive: timed out");
    const buf = this.#decoder.reserve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close(); // makes the pending read end
        reject(new Error(`Cannot receive: nothing within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    let n: number | null;
    try {
      n = await Promise.race([this.#conn.read(buf).catch(() => null), timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (n === null) {
      this.#eof = true;
      return;
    }
    this.#decoder.commit(n);
    let frame: Uint8Array | null;
    while ((frame = this.#decoder.next()) !== null) this.#received.push(unpackr.unpack(frame));
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
