/**
 * Copies of queued frames: independent of the buffer they came from, packed
 * into shared chunks while small, a buffer of their own when large.
 */

import assert from "node:assert/strict";
import { CHUNK_SIZE, FrameArena, MAX_PACKED } from "../lib/dispatch/frame_arena.ts";

Deno.test("FrameArena copies survive the reuse of the read buffer", () => {
  const arena = new FrameArena();
  const readBuffer = new Uint8Array(64);
  const copies: Uint8Array[] = [];
  for (let i = 0; i < 500; i++) {
    readBuffer.fill(i & 0xff);
    copies.push(arena.copy(readBuffer.subarray(0, 1 + (i % 60))));
  }
  readBuffer.fill(0xee);
  for (const [i, c] of copies.entries()) {
    assert.equal(c.length, 1 + (i % 60));
    assert.ok(c.every((b) => b === (i & 0xff)), `copy ${i} changed`);
  }
  // Small copies share chunks: as few buffers as their bytes need, each a chunk.
  const buffers = new Set(copies.map((c) => c.buffer));
  const bytes = copies.reduce((n, c) => n + c.length, 0);
  assert.ok(
    buffers.size <= Math.ceil(bytes / CHUNK_SIZE) + 1,
    `${buffers.size} buffers for ${bytes} bytes`,
  );
  for (const b of buffers) assert.equal(b.byteLength, CHUNK_SIZE);
});

Deno.test("FrameArena gives a large frame a buffer of its own", () => {
  const arena = new FrameArena();
  const big = new Uint8Array(MAX_PACKED + 1).fill(7);
  const copy = arena.copy(big);
  assert.equal(copy.buffer.byteLength, MAX_PACKED + 1);
  big.fill(0);
  assert.ok(copy.every((b) => b === 7));
  const small = arena.copy(new Uint8Array([1, 2, 3]));
  assert.notEqual(small.buffer, copy.buffer);
  assert.deepEqual([...small], [1, 2, 3]);
});
