/**
 * Everything the benchmark starts registers how to stop it here; stopped in
 * reverse order, on every path (end, error, Ctrl-C).
 *
 * @module
 */

/**
 * A stack of stop functions.
 *
 * @example Usage
 * ```ts
 * import { Cleanups } from "./cleanups.ts";
 * const cleanups = new Cleanups();
 * const stopped: string[] = [];
 * cleanups.add(() => Promise.resolve(void stopped.push("first")));
 * cleanups.add(() => Promise.resolve(void stopped.push("second")));
 * await cleanups.run();
 * console.log(stopped); // ["second", "first"]
 * ```
 */
export class Cleanups {
  readonly #stack: (() => Promise<unknown>)[] = [];

  /** Registers `stop`, to run before those registered earlier. */
  add(stop: () => Promise<unknown>): void {
    this.#stack.push(stop);
  }

  /** How many are registered. */
  get size(): number {
    return this.#stack.length;
  }

  /**
   * Runs the registered stops, latest first, until `keep` remain; a stop that
   * throws does not keep the others from running. Idempotent.
   *
   * @param keep How many of the earliest to leave registered. @default {0}
   */
  async run(keep = 0): Promise<void> {
    while (this.#stack.length > keep) await this.#stack.pop()!().catch(() => {});
  }
}
