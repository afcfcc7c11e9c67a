/**
 * The bounded wait queue of requests no worker can take yet.
 *
 * @module
 */

import type { Requester } from "./call.ts";

/** A waiting request: a copy of its frame, since the read buffer moves on. */
export interface QueuedRequest {
  /** Who asked; -1 msgid marks a notification. */
  requester: Requester;
  /** The requester's msgid, or -1 for a notification. */
  msgid: number;
  /** The method. */
  method: string;
  /** The whole frame (owned copy). */
  frame: Uint8Array;
  /** Offset after the msgid in `frame` (requests). */
  tail: number;
  /** When it must leave the queue (performance.now() ms). */
  deadline: number;
  /** True when it is a retry after its first worker died (it is not retried again). */
  retried?: boolean;
}

/**
 * A FIFO with a fixed capacity. Entries come out in order; expired ones are
 * swept from the head, since deadlines grow with arrival order.
 */
export class RequestQueue {
  #items: (QueuedRequest | undefined)[];
  #head = 0;
  #size = 0;
  readonly capacity: number;

  /** @param capacity Most entries held at once. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(
        `Cannot create queue: capacity must be a non-negative integer, got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.#items = new Array(Math.min(capacity, 1024));
  }

  /** Entries held. */
  get length(): number {
    return this.#size;
  }

  /** Adds an entry; false when full. */
  push(item: QueuedRequest): boolean {
    if (this.#size >= this.capacity) return false;
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
    return true;
  }

  /** The oldest entry, without removing it. */
  peek(): QueuedRequest | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns the oldest entry. */
  shift(): QueuedRequest | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  /** Removes every entry for which `drop` is true; returns them. */
  remove(drop: (item: QueuedRequest) => boolean): QueuedRequest[] {
    const kept: QueuedRequest[] = [];
    const dropped: QueuedRequest[] = [];
    let item: QueuedRequest | undefined;
    while ((item = this.shift()) !== undefined) (drop(item) ? dropped : kept).push(item);
    for (const k of kept) this.push(k);
    return dropped;
  }

  #grow(): void {
    const size = Math.min(this.capacity, this.#items.length * 2);
    const next: (QueuedRequest | undefined)[] = new Array(size);
    for (let i = 0; i < this.#size; i++) {
      next[i] = this.#items[(this.#head + i) % this.#items.length];
    }
    this.#items = next;
    this.#head = 0;
  }
}
