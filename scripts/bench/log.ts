/**
 * The benchmark's progress lines, on stderr (stdout carries the report).
 *
 * @module
 */

/** Writes `[bench] text` to stderr. */
export function log(text: string): void {
  console.error(`[bench] ${text}`);
}
