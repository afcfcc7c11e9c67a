/**
 * A handler module for `proxy backend --handler`: a sync method, an async
 * one, one that throws, and one from the default export.
 *
 * @module
 */

/** Sync: adds two numbers. */
export function add(a: number, b: number): number {
  return a + b;
}

/** Async: greets after a turn of the event loop. */
export async function greet(name: string): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 1));
  return `Hello, ${name}`;
}

/** Throws a plain Error. */
export function explode(): never {
  throw new Error("kaboom");
}

/** Rejects with a plain Error. */
export async function rejectLater(): Promise<never> {
  await Promise.resolve();
  throw new Error("rejected later");
}

/** Not a function: not a method. */
export const VERSION = "1.0";

/** Functions of a default-exported object become methods too. */
export default {
  twice(x: number): number {
    return x * 2;
  },
};
