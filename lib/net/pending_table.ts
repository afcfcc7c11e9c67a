/**
 * Requests in flight by the msgid given to them, for a connection that picks
 * its own msgids: a table indexed by the msgid's low bits, not a `Map`.
 *
 * Why not a `Map`: with one insert and one delete per request, V8 rebuilds a
 * Map's hash table every few hundred requests, and each old table points to
 * its successor. An old table that lived through one young-generation
 * collection is promoted, and from there keeps the next one alive, which is
 * promoted in turn: at 16 connections x 16 pipelined requests a fifth of the
 * young generation survived every collection, and the proxy spent about a
 * quarter of its CPU more per request (`bench/2026-11-25-targets.md`). This
 * table allocates only when it grows.
 *
 * @module
 */

const MAX_ID = 0xffffffff;

/**
 * Values under msgids chosen here: unique among the values held, increasing
 * (mod 2^32) so that a msgid is not soon given again after its value leaves.
 */
export class PendingTable<T> {
  readonly #initial: number;
  #values: (T | undefined)[];
  #ids: Uint32Array;
  #mask: number;
  #size = 0;
  #next = 0;

  /**
   * @param initialCapacity Slots at first (rounded up to a power of two);
   *   the table doubles while more than half full, and returns to this size
   *   once empty again.
   * @param firstId The first msgid to give (tests start near 2^32).
   */
  constructor(initialCapacity = 64, firstId = 0) {
    let capacity = 8;
    while (capacity < initialCapacity) capacity *= 2;
    this.#initial = capacity;
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#ids = new Uint32Array(capacity);
    this.#mask = capacity - 1;
    this.#next = firstId >>> 0;
  }

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  /** Slots now (for memory accounting and tests). */
  get capacity(): number {
    return this.#values.length;
  }

  /** Stores `value` under a new msgid, and returns the msgid. */
  add(value: T): number {
    if ((this.#size + 1) * 2 > this.#values.length) this.#resize(this.#values.length * 2);
    let id = this.#next;
    // The slot may hold an older request still in flight: take the next id.
    while (this.#values[id & this.#mask] !== undefined) id = id === MAX_ID ? 0 : id + 1;
    const slot = id & this.#mask;
    this.#values[slot] = value;
    this.#ids[slot] = id;
    this.#next = id === MAX_ID ? 0 : id + 1;
    this.#size++;
    return id;
  }

  /** The value under `id`, or undefined. */
  get(id: number): T | undefined {
    const slot = id & this.#mask;
    return this.#ids[slot] === id ? this.#values[slot] : undefined;
  }

  /** Removes and returns the value under `id`, or undefined. */
  take(id: number): T | undefined {
    const slot = id & this.#mask;
    const value = this.#values[slot];
    if (value === undefined || this.#ids[slot] !== id) return undefined;
    this.#values[slot] = undefined;
    if (--this.#size === 0 && this.#values.length > this.#initial * 4) {
      this.#resize(this.#initial); // a burst is over: give its slots back
    }
    return value;
  }

  /** Removes the value under `id`; true when there was one. */
  delete(id: number): boolean {
    return this.take(id) !== undefined;
  }

  /**
   * The msgids and values held, in slot order (not the order added). Values
   * removed meanwhile are skipped, also when the loop's body clears or
   * resizes the table; values added meanwhile may or may not be visited.
   */
  *entries(): IterableIterator<[number, T]> {
    const values = this.#values;
    const ids = this.#ids;
    for (let slot = 0; slot < values.length; slot++) {
      const value = values[slot];
      if (value === undefined) continue;
      const id = ids[slot]!;
      if (this.get(id) === value) yield [id, value];
    }
  }

  /** The values held, in slot order. */
  *values(): IterableIterator<T> {
    for (const [, value] of this.entries()) yield value;
  }

  /** Removes every value. */
  clear(): void {
    this.#values.fill(undefined);
    if (this.#values.length > this.#initial) this.#resize(this.#initial, false);
    this.#size = 0;
  }

  // Two held msgids never share a slot at the new size: they differ in the
  // low bits of the old mask, which the new mask keeps (when shrinking, the
  // table is empty).
  #resize(capacity: number, keep = true): void {
    const values = this.#values;
    const ids = this.#ids;
    this.#values = new Array<T | undefined>(capacity).fill(undefined);
    this.#ids = new Uint32Array(capacity);
    this.#mask = capacity - 1;
    if (!keep) return;
    for (let slot = 0; slot < values.length; slot++) {
      const value = values[slot];
      if (value === undefined) continue;
      const id = ids[slot]!;
      this.#values[id & this.#mask] = value;
      this.#ids[id & this.#mask] = id;
    }
  }
}
