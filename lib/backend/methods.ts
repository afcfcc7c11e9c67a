/**
 * Methods a backend serves, and the built-in ones.
 *
 * @module
 */

import { ErrorCode, Float, ProxyError } from "../protocol/mod.ts";
import { permissionError } from "./permission_error.ts";

/**
 * A method: called with the request's params spread as arguments; its return
 * value (or what its promise resolves to) is the result. A thrown error
 * becomes `HANDLER_ERROR` with its message, unless it is a `ProxyError`,
 * whose code is kept.
 */
export type Method = (...params: unknown[]) => unknown;

/** A table of methods by name. */
export type Methods = Record<string, Method>;

/** Options of {@linkcode builtinMethods}. */
export interface BuiltinMethodsOptions {
  /**
   * Include `sleep`, `fail` and `crash`, which exist to test isolation (and
   * let any client crash the worker: off unless asked for).
   * @default {false}
   */
  testMethods?: boolean;
  /** Requests served so far, for `info()`. */
  requests: () => number;
  /** Exits the process at once, for `crash()`. @default {Deno.exit(70)} */
  exit?: (code: number) => void;
}

const MAX_SLEEP_MS = 24 * 60 * 60 * 1000;

/**
 * The built-in methods: `ping`, `echo` (which returns its argument exactly as
 * it came, see `decodeValue`), `info`, and when asked for `sleep`, `fail` and
 * `crash`.
 *
 * @param options Which methods, and where `info()` finds its count.
 * @returns The methods by name.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { builtinMethods } from "./methods.ts";
 * const methods = builtinMethods({ requests: () => 0 });
 * assert.equal(await methods.ping!(), "pong");
 * assert.equal(methods.sleep, undefined); // only with testMethods
 * ```
 */
export function builtinMethods(options: BuiltinMethodsOptions): Methods {
  const started = performance.now();
  const methods: Methods = {
    ping: () => "pong",
    echo: (x: unknown) => x === undefined ? null : x,
    info: () => ({
      pid: Deno.pid,
      uptime_s: Math.round((performance.now() - started) / 10) / 100,
      requests: options.requests(),
    }),
  };
  if (options.testMethods ?? false) {
    methods.sleep = (arg: unknown) => {
      // A whole-number float (from Python, say) is a number too.
      const ms = arg instanceof Float ? arg.value : arg;
      if (typeof ms !== "number" || !(ms >= 0) || ms > MAX_SLEEP_MS) {
        throw new ProxyError(
          ErrorCode.INVALID_PARAMS,
          `Cannot sleep: ms must be a number from 0 to ${MAX_SLEEP_MS}`,
        );
      }
      return new Promise((resolve) => setTimeout(() => resolve(null), ms));
    };
    methods.fail = (message: unknown) => {
      throw new ProxyError(
        ErrorCode.HANDLER_ERROR,
        typeof message === "string" ? message : "fail() called",
      );
    };
    methods.crash = () => {
      (options.exit ?? Deno.exit)(70);
    };
  }
  return methods;
}

/**
 * Loads a handler module: each exported function becomes a method of the same
 * name (the default export, if an object, contributes its functions too).
 *
 * @param specifier A path (relative to the working directory) or URL.
 * @throws {TypeError} When the module exports no function.
 * @throws {ProxyError} `PERMISSION_DENIED` when loading it needs a permission the process lacks.
 * @returns The methods by name.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadHandlerModule } from "./methods.ts";
 * const methods = await loadHandlerModule(
 *   "data:text/javascript,export function twice(x) { return 2 * x }",
 * );
 * assert.equal(await methods.twice!(21), 42);
 * ```
 */
export async function loadHandlerModule(specifier: string): Promise<Methods> {
  const url = /^[a-z][a-z0-9+.-]*:/i.test(specifier) && !/^[a-z]:[\\/]/i.test(specifier)
    ? specifier
    : new URL(specifier, `file://${Deno.cwd()}/`).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (err) {
    throw permissionError(err, `Cannot load handler module ${specifier}`) ?? err;
  }
  const methods: Methods = {};
  const def = mod.default;
  if (def !== null && typeof def === "object") {
    for (const [name, value] of Object.entries(def)) {
      if (typeof value === "function") methods[name] = value as Method;
    }
  }
  for (const [name, value] of Object.entries(mod)) {
    if (name !== "default" && typeof value === "function") methods[name] = value as Method;
  }
  if (Object.keys(methods).length === 0) {
    throw new TypeError(`Cannot load handler module ${specifier}: it exports no function`);
  }
  return methods;
}
