/**
 * The `--port` flag parser.
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import { parsePort } from "../lib/net/address.ts";

/** Parses a port flag, as a usage error when invalid. */
export function parsePortOption(v: string): number {
  try {
    return parsePort(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
