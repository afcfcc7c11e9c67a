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
  /** `--worker-allow-net`: hosts built-in workers may reach (true: any). Default: none. */
  workerAllowNet: Grant;
  /** `--worker-allow-env`: environment variables they may read (true: any). Default: none. */
  workerAllowEnv: Grant;
  /** `--worker-allow-run`: programs they may run (true: any). Default: none. */
  workerAllowRun: Grant;
  /** `--worker-allow-read`: paths they may read beyond their own (true: any). Default: none. */
  workerAllowRead: Grant;
  /** `--worker-allow-write`: paths they may write beyond their socket (true: any). Default: none. */
  workerAllowWrite: Grant;
  /** `--worker-allow-sys`: system information they may read (true: any). Default: none. */
  workerAllowSys: Grant;
  /** `--worker-allow-ffi`: native libraries they may load (true: any). Default: none. */
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
