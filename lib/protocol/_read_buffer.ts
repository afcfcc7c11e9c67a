/**
 * The input buffer shared by the stream decoders: bytes are read straight
 * into it, whole messages are handed out as views, the unfinished one moves
 * to the front before the buffer grows, and it never grows past a cap.
 *
 * Internal to the protocol layer; its fields are plain so the decoders' scan
 * loops read them directly.
 *
 * @module
 */

/** A growable buffer holding the bytes from `start` to `end`. */
export class ReadBuffer {
  /** The storage; replaced when it grows. */
  bytes: Uint8Array;
  /** A view of all of `bytes` (absolute offsets). */
  view: DataView;
  /** First byte not yet handed out. */
  start = 0;
  /** End of the buffered bytes. */
  end = 0;
  readonly #readSize: number;
  readonly #cap: number;
  readonly #onShift: ((shift: number) => void) | undefined;

  /**
   * @param readSize Room guaranteed by {@linkcode ReadBuffer.reserve}.
   * @param cap Largest size doubling may reach (one message plus one read).
   * @param onShift Told how far the bytes moved, for offsets kept outside.
   */
  constructor(readSize: number, cap: number, onShift?: (shift: number) => void) {
    this.#readSize = readSize;
    this.#cap = cap;
    this.#onShift = onShift;
    this.bytes = new Uint8Array(readSize);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Bytes buffered and not yet handed out. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** The bytes not yet handed out (a view, valid until the next reserve or push). */
  partial(): Uint8Array {
    return this.bytes.subarray(this.start, this.end);
  }

  /** A writable region of at least `readSize` bytes at the end. */
  reserve(): Uint8Array {
    this.#makeRoom(this.#readSize);
    return this.bytes.subarray(this.end);
  }

  /** Records `n` bytes written into the region from {@linkcode ReadBuffer.reserve}. */
  commit(n: number): void {
    this.end += n;
  }

  /** Appends a copy of `chunk`. */
  push(chunk: Uint8Array): void {
    this.#makeRoom(chunk.length);
    this.bytes.set(chunk, this.end);
    this.end += chunk.length;
  }

  #makeRoom(want: number): void {
    if (this.bytes.length - this.end >= want) return;
    if (this.start > 0) {
      const shift = this.start;
      this.bytes.copyWithin(0, shift, this.end);
      this.end -= shift;
      this.start = 0;
      this.#onShift?.(shift);
      if (this.bytes.length - this.end >= want) return;
    }
    // Doubling, but not past the cap: the decoders reject a message past
    // their limit, so one message and one read always fit.
    const need = this.end + want;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    size = Math.max(need, Math.min(size, this.#cap));
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.end));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }
}
