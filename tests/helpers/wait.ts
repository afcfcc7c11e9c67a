/**
 * Waiting and failure helpers shared by the end-to-end tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ProxyError } from "../../lib/protocol/errors.ts";

/** Awaits `p`, which must reject with a {@linkcode ProxyError}, and returns that error. */
export async function errorOf(p: Promise<unknown>): Promise<ProxyError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ProxyError, `expected a ProxyError, got ${err}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

/**
 * Polls real state until `probe` returns a value other than undefined or
 * false, and returns it. Not a sleep: each round re-checks; it fails after
 * `timeoutMs`.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Timed out waiting for ${what}`);
}
