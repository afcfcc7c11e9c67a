/**
 * Copies of small frames packed into shared chunks: a request that waits in
 * the queue (or may be retried) must outlive the read buffer it came from,
 * and one `ArrayBuffer` per copy (a `slice()`) cost the proxy half again as
 * much CPU per request when 64 clients x 16 pipelined requests kept the
 * queue full (bench/2026-11-25-targets.md).
 *
 * A chunk lives while any copy in it does: at worst (every live copy in a
 * chunk of its own, the others gone) the chunks hold the copies alive (the
 * queue's size plus the retryable requests in flight) times
 * {@linkcode CHUNK_SIZE}. Chunks are kept small for that; 8 KiB chunks
 * measured no faster.
 *
 * @module
 */

/** Bytes of one chunk. */
export const CHUNK_SIZE = 2 * 1024;
/** Frames above this size get an `ArrayBuffer` of their own. */
export const MAX_PACKED = 256;

/** Hands out copies of frames; owned by one dispatcher. */
export class FrameArena {
  #chunk = new Uint8Array(0);
  #used = 0;

  /** A copy of `frame` that stays valid after the original is reused. */
  copy(frame: Uint8Array): Uint8Array {
    const n = frame.length;
    if (n > MAX_PACKED) return frame.slice();
    if (this.#used + n > this.#chunk.length) {
      this.#chunk = new Uint8Array(CHUNK_SIZE);
      this.#used = 0;
    }
    const copy = this.#chunk.subarray(this.#used, this.#used + n);
    copy.set(frame);
    this.#used += n;
    return copy;
  }
}
