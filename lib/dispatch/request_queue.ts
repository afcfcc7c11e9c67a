/**
 * The bounded wait queue of calls no host can take yet. Calls that any host
 * may serve wait in one FIFO; calls that must reach one particular host (a
 * `dedicated` worker's key, a hashed key's upstream) wait in a FIFO of their
 * own pin, so a busy host never holds up calls for the others. One capacity
 * bounds them all.
 *
 * @module
 */

import type { Call } from "./call.ts";

/** A growable ring buffer. */
class Fifo<T> {
  #items: (T | undefined)[] = new Array(8);
  #head = 0;
  #size = 0;

  get length(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  /** Removes the items for which `drop` is true, keeping the order of the rest. */
  remove(drop: (item: T) => boolean): T[] {
    const dropped: T[] = [];
    const n = this.#size;
    for (let i = 0; i < n; i++) {
      const item = this.shift()!;
      if (drop(item)) dropped.push(item);
      else this.push(item);
    }
    return dropped;
  }

  #grow(): void {
    const next: (T | undefined)[] = new Array(this.#items.length * 2);
    for (let i = 0; i < this.#size; i++) {
      next[i] = this.#items[(this.#head + i) % this.#items.length];
    }
    this.#items = next;
    this.#head = 0;
  }
}

/**
 * Calls waiting, unpinned or pinned, in arrival order within each.
 *
 * @example Usage
 * ```ts
 * import { RequestQueue } from "./request_queue.ts";
 * const q = new RequestQueue<string>(2);
 * console.log(q.push("a"), q.push("b", "key:k"), q.push("c")); // true true false
 * console.log(q.shift("key:k"), q.shift(), q.length); // b a 0
 * ```
 */
export class RequestQueue<T = Call> {
  readonly capacity: number;
  readonly #any = new Fifo<T>();
  readonly #pinned = new Map<string, Fifo<T>>();
  #size = 0;

  /** @param capacity Most calls held at once, pinned or not. */
  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(
        `Cannot create queue: capacity must be a non-negative integer, got ${capacity}`,
      );
    }
    this.capacity = capacity;
  }

  /** Calls held. */
  get length(): number {
    return this.#size;
  }

  /** Calls held under `pin` (or unpinned). */
  lengthOf(pin?: string): number {
    return pin === undefined ? this.#any.length : this.#pinned.get(pin)?.length ?? 0;
  }

  /** Adds a call, pinned or not; false when the queue is full. */
  push(item: T, pin?: string): boolean {
    if (this.#size >= this.capacity) return false;
    if (pin === undefined) this.#any.push(item);
    else {
      let fifo = this.#pinned.get(pin);
      if (!fifo) this.#pinned.set(pin, fifo = new Fifo());
      fifo.push(item);
    }
    this.#size++;
    return true;
  }

  /** The oldest call of `pin` (or unpinned), without removing it. */
  peek(pin?: string): T | undefined {
    return pin === undefined ? this.#any.peek() : this.#pinned.get(pin)?.peek();
  }

  /** Removes and returns the oldest call of `pin` (or unpinned). */
  shift(pin?: string): T | undefined {
    let item: T | undefined;
    if (pin === undefined) item = this.#any.shift();
    else {
      const fifo = this.#pinned.get(pin);
      item = fifo?.shift();
      if (fifo && fifo.length === 0) this.#pinned.delete(pin);
    }
    if (item !== undefined) this.#size--;
    return item;
  }

  /** The pins with calls waiting. */
  pins(): string[] {
    return [...this.#pinned.keys()];
  }

  /** Removes every call for which `drop` is true, wherever it waits; returns them. */
  remove(drop: (item: T) => boolean): T[] {
    const dropped = this.#any.remove(drop);
    for (const [pin, fifo] of this.#pinned) {
      dropped.push(...fifo.remove(drop));
      if (fifo.length === 0) this.#pinned.delete(pin);
    }
    this.#size -= dropped.length;
    return dropped;
  }

  /**
   * Removes the calls at the head of each FIFO for which `expired` is true
   * (deadlines grow with arrival order, so the head expires first).
   */
  expire(expired: (item: T) => boolean): T[] {
    const out: T[] = [];
    const sweep = (fifo: Fifo<T>) => {
      let head: T | undefined;
      while ((head = fifo.peek()) !== undefined && expired(head)) out.push(fifo.shift()!);
    };
    sweep(this.#any);
    for (const [pin, fifo] of this.#pinned) {
      sweep(fifo);
      if (fifo.length === 0) this.#pinned.delete(pin);
    }
    this.#size -= out.length;
    return out;
  }
}
