/**
 * A compact digest of a request's params for the slow log.
 *
 * @module
 */

/**
 * FNV-1a over the params' first 32 bytes, with their length: enough to tell
 * requests apart in a log line without logging their content, at a small
 * fixed cost per request. Packed in one number: hash * 2^21 + length.
 */
export function paramsDigest(frame: Uint8Array, tail: number, method: string): number {
  const len = method.length; // method names are ASCII in practice
  const start = tail + (len < 32 ? 1 : len < 256 ? 2 : len < 65536 ? 3 : 5) + len;
  const end = Math.min(frame.length, start + 32);
  let h = 0x811c9dc5;
  for (let at = start; at < end; at++) {
    h ^= frame[at]!;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) * 2 ** 21 + Math.min(Math.max(0, frame.length - start), 2 ** 21 - 1);
}

/** Formats a digest from {@linkcode paramsDigest} as `hash/lengthB`. */
export function formatDigest(digest: number): string {
  const hash = Math.floor(digest / 2 ** 21);
  return `${hash.toString(16).padStart(8, "0")}/${digest % 2 ** 21}B`;
}
