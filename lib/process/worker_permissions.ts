/**
 * The Deno permissions of a built-in worker (`proxy backend` re-invoked by
 * `proxy serve` under `deno run`): only what serving needs, not the proxy's.
 *
 * What a worker needs, found by running one with nothing granted:
 * - its own socket: read (the stale-socket check), write (removing it), and
 *   net scoped to `unix:PATH` (Deno 2 checks a Unix socket as net access);
 * - read of each local `--handler` module (a dynamic import is checked, the
 *   program's own static imports and npm packages are not), and of the
 *   program's directory, which handler modules import `mod.ts` from.
 *
 * Nothing else: no env (the backend reads `PROXY_WORKER_SOCKET` only without
 * `--socket`, and the proxy passes `--socket`), no run, no sys. The
 * `--worker-allow-*` flags add to this. A `deno compile`d binary has its
 * permissions baked in: its workers get the same ones, nothing is narrowed.
 *
 * @module
 */

import { resolve } from "node:path";
import type { Grant } from "../options/option.ts";
import {
  WORKER_PERMISSION_NAMES,
  type WorkerPermissionName,
} from "../options/worker_permission_options.ts";
import type { Runtime } from "./self_command.ts";

/** What a built-in worker may do beyond serving its socket. */
export interface WorkerPermissions {
  /** Its handler modules, as passed to it (absolute paths or URLs). */
  handlers?: readonly string[];
  /** What `--worker-allow-*` grants, by permission name. */
  grants?: Partial<Record<WorkerPermissionName, Grant>>;
}

/**
 * The `--allow-*` flags of one built-in worker.
 *
 * @param socket The socket path it listens on.
 * @param permissions Its handler modules and extra grants.
 * @param programRoot The program's directory (read-only), if any.
 * @returns Deno permission flags, never one that grants network beyond the socket unless asked.
 * @throws {TypeError} For a path with a comma, which Deno's flags cannot carry.
 *
 * @example Usage
 * ```ts
 * import { workerPermissionFlags } from "./worker_permissions.ts";
 * console.log(workerPermissionFlags("/tmp/p/w1.sock", { handlers: ["/app/h.ts"] }, "/app"));
 * // ["--allow-read=/tmp/p/w1.sock,/app,/app/h.ts", "--allow-write=/tmp/p/w1.sock", "--allow-net=unix:/tmp/p/w1.sock"]
 * ```
 */
export function workerPermissionFlags(
  socket: string,
  permissions: WorkerPermissions,
  programRoot: string | null,
): string[] {
  const grants = permissions.grants ?? {};
  const handlers = permissions.handlers ?? [];
  const base: Record<WorkerPermissionName, string[]> = {
    net: [`unix:${socket}`],
    env: [],
    run: [],
    read: [socket, ...(programRoot === null ? [] : [programRoot]), ...localPaths(handlers)],
    write: [socket],
    sys: [],
    ffi: [],
  };
  const flags: string[] = [];
  for (const name of WORKER_PERMISSION_NAMES) {
    const grant = grants[name] ?? false;
    if (grant === true) {
      flags.push(`--allow-${name}`);
      continue;
    }
    const list = unique([...base[name], ...(grant === false ? [] : grant)]);
    if (list.length > 0) flags.push(`--allow-${name}=${joinList(name, list)}`);
  }
  // Remote handler modules are fetched by the import, which Deno checks apart from net.
  const hosts = unique(remoteHosts(handlers));
  if (hosts.length > 0) flags.push(`--allow-import=${joinList("import", hosts)}`);
  return flags;
}

/**
 * The runtime a built-in worker is started with: the proxy's, with its
 * permission flags replaced by {@linkcode workerPermissionFlags} and
 * `--no-prompt` kept, so no permission prompt can ever block a worker. A
 * compiled binary is returned as it is: its permissions cannot be narrowed.
 *
 * @param runtime How the proxy runs.
 * @param socket The worker's socket path.
 * @param permissions Its handler modules and extra grants.
 */
export function builtinWorkerRuntime(
  runtime: Runtime,
  socket: string,
  permissions: WorkerPermissions,
): Runtime {
  if (runtime.standalone) return runtime;
  const kept = runtime.denoFlags.filter((f) => !/^(--allow-|-A$|--no-prompt$)/.test(f));
  return {
    ...runtime,
    denoFlags: [
      ...kept,
      "--no-prompt",
      ...workerPermissionFlags(socket, permissions, programRoot(runtime)),
    ],
  };
}

/**
 * Why `--worker-allow-*` flags given have no effect, or null when they do
 * (or none were given): a compiled binary's workers have the permissions
 * compiled into it, and a `--worker-cmd` worker is not started by Deno.
 */
export function ignoredGrants(
  grants: WorkerPermissions["grants"],
  how: { standalone: boolean; workerCmd: boolean },
): string | null {
  const given = Object.entries(grants ?? {}).filter(([, g]) => g !== false && g !== undefined);
  if (given.length === 0 || (!how.standalone && !how.workerCmd)) return null;
  const flags = given.map(([name]) => `--worker-allow-${name}`).join(", ");
  return how.workerCmd
    ? `${flags}: no effect with --worker-cmd (that worker is not started by Deno)`
    : `${flags}: no effect in a compiled binary (its workers have the permissions compiled into it)`;
}

/**
 * The program's directory: the folder of its `deno.json` (`--config=`), else
 * of its main module; null when it is not a local file.
 */
export function programRoot(runtime: Runtime): string | null {
  const config = runtime.denoFlags.find((f) => f.startsWith("--config="));
  if (config !== undefined) return dirname(config.slice("--config=".length));
  if (runtime.mainModule.startsWith("file:")) {
    return dirname(decodeURIComponent(new URL(runtime.mainModule).pathname));
  }
  return null;
}

/**
 * A handler module's specifier as a worker gets it: a path made absolute
 * against `cwd`; a URL (`file:`, `https:`, `npm:`, ...) as it is.
 */
export function absoluteHandler(specifier: string, cwd: string): string {
  return isUrl(specifier) ? specifier : resolve(cwd, specifier);
}

function isUrl(specifier: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(specifier);
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

// Handler modules on this machine, as paths (relative ones resolve against
// the worker's working directory, which is the proxy's).
function localPaths(specifiers: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of specifiers) {
    if (s.startsWith("file:")) out.push(decodeURIComponent(new URL(s).pathname));
    else if (!isUrl(s)) out.push(s);
  }
  return out;
}

function remoteHosts(specifiers: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of specifiers) {
    if (/^https?:/i.test(s)) out.push(new URL(s).host);
  }
  return out;
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

function joinList(name: string, list: string[]): string {
  const bad = list.find((x) => x.includes(","));
  if (bad !== undefined) {
    throw new TypeError(
      `Cannot grant a worker ${name} access to "${bad}": Deno's flags cannot carry a comma`,
    );
  }
  return list.join(",");
}
