/**
 * Where the bytes of a str (or a bin: old MessagePack had no str/bin split,
 * and some clients still send text that way) lie in a frame, read from its
 * header without decoding anything. Shared by the envelope reader (method
 * names) and the routing-key reader.
 *
 * @module
 */

/** A span of a frame, filled by {@linkcode textSpan}. */
export interface Span {
  start: number;
  end: number;
}

/**
 * Fills `out` with the span of the str or bin at `pos`; false when there is
 * none there, or it does not fit in `frame`. Allocates nothing.
 */
export function textSpan(frame: Uint8Array, pos: number, out: Span): boolean {
  const b = frame[pos];
  if (b === undefined) return false;
  let len: number;
  let start: number;
  if (b >= 0xa0 && b <= 0xbf) {
    len = b & 0x1f;
    start = pos + 1;
  } else if ((b === 0xd9 || b === 0xc4) && pos + 2 <= frame.length) {
    len = frame[pos + 1]!;
    start = pos + 2;
  } else if ((b === 0xda || b === 0xc5) && pos + 3 <= frame.length) {
    len = (frame[pos + 1]! << 8) | frame[pos + 2]!;
    start = pos + 3;
  } else if ((b === 0xdb || b === 0xc6) && pos + 5 <= frame.length) {
    len = frame[pos + 1]! * 2 ** 24 + ((frame[pos + 2]! << 16) | (frame[pos + 3]! << 8) |
      frame[pos + 4]!);
    start = pos + 5;
  } else return false;
  if (start + len > frame.length) return false;
  out.start = start;
  out.end = start + len;
  return true;
}
