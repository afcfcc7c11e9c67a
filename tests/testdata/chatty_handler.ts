/**
 * A handler module that writes to its worker's output: plain lines on
 * stdout, and a record through the program's own logger (which a worker
 * writes in the proxy's --log-format).
 *
 * @module
 */

import { handlerLogger } from "../../backend.ts";

/** Prints `n` lines of about 100 characters on stdout; returns `n`. */
export function chatter(n: number, word = "chatter"): number {
  for (let i = 0; i < n; i++) console.log(`${word} ${i} {braces stay} ${"x".repeat(80)}`);
  return n;
}

/** Logs a warning with properties through the `proxy·handler` logger. */
export function warn(message: string): null {
  handlerLogger().warn("Handler says {message}", { message, answer: 42 });
  return null;
}
