/**
 * The input buffer shared by the stream decoders: bytes are read straight
 * into it, whole messages are handed out as views, the unfinished one moves
 * to the front before the buffer grows, and it never grows past a cap.
 *
 * It starts small and is allocated on first use, so an idle connection costs
 * little: reads offer a region that doubles while reads fill it (a busy
 * connection) up to `readSize`, and the buffer goes back to the small size
 * once it is empty after a small read (the burst is over).
 *
 * Internal to the protocol layer; its fields are plain so the decoders' scan
 * loops read them directly.
 *
 * @module
 */

/** The first read region of a connection, and what an idle one goes back to. */
export const MIN_READ_SIZE = 256;

const EMPTY = new Uint8Array(0);

/** A growable buffer holding the bytes from `start` to `end`. */
export class ReadBuffer {
  /** The storage; replaced when it grows or shrinks. */
  bytes: Uint8Array = EMPTY;
  /** A view of all of `bytes` (absolute offsets). */
  view: DataView = new DataView(EMPTY.buffer);
  /** First byte not yet handed out. */
  start = 0;
  /** End of the buffered bytes. */
  end = 0;
  readonly #readSize: number;
  readonly #cap: number;
  readonly #onShift: ((shift: number) => void) | undefined;
  #region: number; // size of the next read region
  #lastRead = 0; // bytes of the last commit

  /**
   * @param readSize Largest region offered by {@linkcode ReadBuffer.reserve}.
   * @param cap Largest size the buffer may reach (one message plus one read).
   * @param onShift Told how far the bytes moved, for offsets kept outside.
   */
  constructor(readSize: number, cap: number, onShift?: (shift: number) => void) {
    this.#readSize = readSize;
    this.#cap = cap;
    this.#onShift = onShift;
    this.#region = Math.min(MIN_READ_SIZE, readSize);
  }

  /** Bytes buffered and not yet handed out. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Bytes of storage held now. */
  get capacity(): number {
    return this.bytes.length;
  }

  /** The bytes not yet handed out (a view, valid until the next reserve or push). */
  partial(): Uint8Array {
    return this.bytes.subarray(this.start, this.end);
  }

  /** A writable region at the end: the read-size policy above decides how large. */
  reserve(): Uint8Array {
    if (this.start === this.end) {
      this.start = this.end = 0;
      // A small read into an empty buffer: the burst is over, give memory back.
      if (this.#lastRead < MIN_READ_SIZE / 2 && this.bytes.length > 2 * MIN_READ_SIZE) {
        this.#region = Math.min(MIN_READ_SIZE, this.#readSize);
        this.#replace(new Uint8Array(this.#region));
      }
    }
    this.#makeRoom(this.#region);
    return this.bytes.subarray(this.end, this.end + this.#room());
  }

  #room(): number {
    return Math.min(this.bytes.length - this.end, this.#readSize);
  }

  /** Records `n` bytes written into the region from {@linkcode ReadBuffer.reserve}. */
  commit(n: number): void {
    this.end += n;
    this.#lastRead = n;
    // A read that filled its region: the peer has more, offer more next time.
    if (n >= this.#region && this.#region < this.#readSize) {
      this.#region = Math.min(this.#region * 2, this.#readSize);
    }
  }

  /** Appends a copy of `chunk`. */
  push(chunk: Uint8Array): void {
    this.#makeRoom(chunk.length);
    this.bytes.set(chunk, this.end);
    this.end += chunk.length;
  }

  #replace(next: Uint8Array): void {
    this.bytes = next;
    this.view = new DataView(next.buffer);
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
    let size = Math.max(this.bytes.length * 2, MIN_READ_SIZE);
    while (size < need) size *= 2;
    size = Math.max(need, Math.min(size, this.#cap));
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.end));
    this.#replace(next);
  }
}
