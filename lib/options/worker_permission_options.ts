/**
 * `serve --worker-allow-*`: what the built-in workers may do beyond serving
 * their socket and loading their handler modules (see
 * `lib/process/worker_permissions.ts`). Each flag is Deno's `--allow-*` of the
 * same name, given to the workers instead of the proxy's own permissions.
 *
 * @module
 */

import { type Grant, grantOption, type OptionTable } from "./option.ts";

/** The permissions a worker can be granted, by Deno's name. */
export const WORKER_PERMISSION_NAMES = [
  "net",
  "env",
  "run",
  "read",
  "write",
  "sys",
  "ffi",
] as const;

/** One of {@linkcode WORKER_PERMISSION_NAMES}. */
export type WorkerPermissionName = typeof WORKER_PERMISSION_NAMES[number];

const WHAT: Record<WorkerPermissionName, string> = {
  net: "use the network (list: HOST[:PORT])",
  env: "read environment variables (list: NAME)",
  run: "run programs (list: NAME)",
  read: "read more paths (list: PATH)",
  write: "write paths (list: PATH)",
  sys: "read system information (list: API name)",
  ffi: "load native libraries (list: PATH)",
};

/** The flag that grants a worker `name`, e.g. `--worker-allow-net`. */
export function workerPermissionFlag(name: WorkerPermissionName): string {
  return `--worker-allow-${name}`;
}

/** The `--worker-allow-*` options, in `--help` order. */
export const WORKER_PERMISSION_OPTIONS: OptionTable = WORKER_PERMISSION_NAMES.map((name) =>
  grantOption({
    name: `worker-allow-${name}`,
    help: `built-in workers (under deno run) may ${WHAT[name]}; the flag alone: any`,
  })
);

/** The resolved values of {@linkcode WORKER_PERMISSION_OPTIONS}. */
export interface WorkerPermissionSettings {
  workerAllowNet: Grant;
  workerAllowEnv: Grant;
  workerAllowRun: Grant;
  workerAllowRead: Grant;
  workerAllowWrite: Grant;
  workerAllowSys: Grant;
  workerAllowFfi: Grant;
}

/** The grants of a worker, by permission name, from resolved settings. */
export function workerGrants(
  s: WorkerPermissionSettings,
): Record<WorkerPermissionName, Grant> {
  return {
    net: s.workerAllowNet,
    env: s.workerAllowEnv,
    run: s.workerAllowRun,
    read: s.workerAllowRead,
    write: s.workerAllowWrite,
    sys: s.workerAllowSys,
    ffi: s.workerAllowFfi,
  };
}
