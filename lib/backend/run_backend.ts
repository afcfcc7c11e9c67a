/**
 * `proxy backend` as a whole process: a {@linkcode BackendServer} with the
 * built-in and user methods, stopped by signals, a `shutdown` notification or
 * (with `parentWatch`) the end of stdin.
 *
 * @module
 */

import { type Address, formatAddress } from "../net/address.ts";
import { getLogger } from "../log.ts";
import { BackendServer } from "./backend_server.ts";
import { legacyMethods } from "./legacy_methods.ts";
import { builtinMethods, loadHandlerModule, type Methods } from "./methods.ts";

/** Options of {@linkcode runBackend}. */
export interface RunBackendOptions {
  /** Where to listen. */
  address: Address;
  /** Handler module paths or URLs whose exported functions become methods. */
  handlers?: string[];
  /** Serve `sleep`, `fail` and `crash`. @default {true} */
  testMethods?: boolean;
  /** Exit when stdin closes (the parent is gone). @default {false} */
  parentWatch?: boolean;
  /** Largest message accepted. @default {8388608} */
  maxMessageSize?: number;
  /** Unread answers held per client before its requests stop being read. @default {4194304} */
  writeBufferLimit?: number;
  /** Milliseconds to let requests in flight finish on shutdown. @default {10000} */
  drainTimeout?: number;
  /** Called once listening, with the bound address. */
  onListening?: (address: Address) => void;
}

/**
 * Runs a backend until it is told to stop; resolves after a clean shutdown.
 */
export async function runBackend(options: RunBackendOptions): Promise<void> {
  const log = getLogger(["backend"]);
  let server: BackendServer | null = null;
  const methods: Methods = builtinMethods({
    testMethods: options.testMethods ?? true,
    requests: () => server?.requests ?? 0,
  });
  // `legacy.call` for the legacy protocol; a handler module may replace it.
  Object.assign(methods, legacyMethods());
  for (const handler of options.handlers ?? []) {
    Object.assign(methods, await loadHandlerModule(handler));
  }
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => stop = resolve);
  server = new BackendServer({
    address: options.address,
    methods,
    ...(options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize }),
    ...(options.writeBufferLimit === undefined
      ? {}
      : { writeBufferLimit: options.writeBufferLimit }),
    onShutdownRequest: () => stop("shutdown notification"),
  });
  const bound = await server.listen();
  // A fixed, unquoted line: scripts and tests wait for "listening on ADDRESS".
  log.info(`Backend ${Deno.pid} listening on ${formatAddress(bound)}`);
  options.onListening?.(bound);

  const onSignal = () => stop("signal");
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  if (options.parentWatch) void watchParent(() => stop("parent gone"));

  const why = await stopped;
  log.info("Backend {pid} stopping: {why}", { pid: Deno.pid, why });
  await server.close(AbortSignal.timeout(options.drainTimeout ?? 10_000));
  Deno.removeSignalListener("SIGTERM", onSignal);
  Deno.removeSignalListener("SIGINT", onSignal);
}

/**
 * Calls `onGone` when stdin reaches its end: a parent that holds our stdin
 * pipe and dies closes it, even when killed with SIGKILL.
 */
export async function watchParent(onGone: () => void): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    while ((await Deno.stdin.read(buf)) !== null) {
      // The parent never writes; anything read is ignored.
    }
  } catch {
    // stdin unreadable counts as gone
  }
  onGone();
}
