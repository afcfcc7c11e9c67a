/**
 * A Deno permission a handler lacked, as an answer that says which flag
 * grants it, instead of a bare `HANDLER_ERROR` (or a prompt: workers run
 * with `--no-prompt`).
 *
 * @module
 */

import { ErrorCode, ProxyError } from "../protocol/errors.ts";
import {
  WORKER_PERMISSION_NAMES,
  workerPermissionFlag,
  type WorkerPermissionName,
} from "../options/worker_permission_options.ts";

/** What a permission error says: which permission, and for what. */
export interface PermissionDenial {
  /** Deno's name for it: `net`, `env`, `read`, ... */
  permission: string;
  /** What it was asked for, e.g. `127.0.0.1:8080` or `HOME`; null when Deno names nothing. */
  target: string | null;
}

// Deno 2: `Requires net access to "127.0.0.1:80", run again with the --allow-net flag`.
const REQUIRES = /^Requires (\w+) access(?: to "([^"]*)")?/;

/**
 * The permission a Deno permission error is about, or null for any other
 * error. Deno throws `NotCapable` (a `TypeError` for a dynamic import);
 * `PermissionDenied` is the operating system's refusal and counts only
 * when Deno's wording shows it was a permission check.
 */
export function permissionDenial(err: unknown): PermissionDenial | null {
  if (!(err instanceof Error)) return null;
  const deno = err instanceof Deno.errors.NotCapable ||
    err instanceof Deno.errors.PermissionDenied || err instanceof TypeError;
  const m = deno ? REQUIRES.exec(err.message) : null;
  return m ? { permission: m[1]!, target: m[2] ?? null } : null;
}

/**
 * A `PERMISSION_DENIED` error for `err` when it is a Deno permission error,
 * naming the `--worker-allow-*` flag that grants the permission; else null.
 *
 * @param err What the handler threw.
 * @param action What failed, e.g. `Cannot call fetchIt`.
 *
 * @example Usage
 * ```ts
 * import { permissionError } from "./permission_error.ts";
 * const err = new Deno.errors.NotCapable(
 *   'Requires net access to "example.com:80", run again with the --allow-net flag',
 * );
 * console.log(permissionError(err, "Cannot call probe")?.message);
 * // Cannot call probe: requires net access to "example.com:80": start the proxy with
 * // --worker-allow-net=example.com:80 (or --worker-allow-net for all); a backend run by hand needs deno run --allow-net
 * ```
 */
export function permissionError(err: unknown, action: string): ProxyError | null {
  const denial = permissionDenial(err);
  if (!denial) return null;
  const { permission, target } = denial;
  const what = `requires ${permission} access${target === null ? "" : ` to "${target}"`}`;
  const grantable = (WORKER_PERMISSION_NAMES as readonly string[]).includes(permission);
  const flag = grantable ? workerPermissionFlag(permission as WorkerPermissionName) : null;
  const hint = flag === null
    ? "a worker imports remote modules only from the hosts of its --handler URLs"
    : `start the proxy with ${target === null ? flag : `${flag}=${target} (or ${flag} for all)`}` +
      `; a backend run by hand needs deno run --allow-${permission}`;
  return new ProxyError(ErrorCode.PERMISSION_DENIED, `${action}: ${what}: ${hint}`, {
    data: { permission, target, flag },
    cause: err,
  });
}
