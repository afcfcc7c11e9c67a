/**
 * How a request of the original C++ proxy's protocol (a "legacy" CCRPC frame)
 * reaches a worker, and the built-in worker's legacy functions.
 *
 * The proxy carries each legacy request to a worker as an ordinary
 * MessagePack-RPC call, so any worker, including a `--worker-cmd` program,
 * can implement function numbers:
 *
 * - request: method {@linkcode LEGACY_CALL_METHOD} (`"legacy.call"`) with params
 *   `[{ func_no, flow_no, user_id, body }]` (see {@linkcode LegacyCallRequest});
 *   `body` is a string for `body_type` `'0'` (JSON), bin otherwise;
 * - result: the reply body, a string or bin (anything else is sent as its JSON text);
 * - an error with code {@linkcode UNKNOWN_FUNCTION} (or `METHOD_NOT_FOUND`, from a
 *   worker without `legacy.call`) becomes legacy error -1 `unknow request`;
 *   any other error becomes -2 `illegal request`.
 *
 * @module
 */

import { ErrorCode, ProxyError } from "../protocol/mod.ts";
import type { Method, Methods } from "./methods.ts";

/**
 * The MessagePack-RPC method that carries a legacy request to a worker.
 *
 * @example A worker that implements function 3000
 * ```ts
 * import assert from "node:assert/strict";
 * import { LEGACY_CALL_METHOD, legacyMethods } from "./legacy_methods.ts";
 * const methods = legacyMethods({ 3000: (req) => JSON.stringify({ hello: req.user_id }) });
 * const body = await methods[LEGACY_CALL_METHOD]!({ func_no: 3000, flow_no: 1, user_id: "ann", body: "{}" });
 * assert.equal(body, '{"hello":"ann"}');
 * ```
 */
export const LEGACY_CALL_METHOD = "legacy.call";

/**
 * Error code a worker answers for a function number it does not implement.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { legacyMethods, UNKNOWN_FUNCTION } from "./legacy_methods.ts";
 * const call = legacyMethods({})["legacy.call"]!;
 * assert.throws(() => call({ func_no: 9, flow_no: 1, user_id: "ann", body: "{}" }), {
 *   code: UNKNOWN_FUNCTION,
 * });
 * ```
 */
export const UNKNOWN_FUNCTION = "UNKNOWN_FUNCTION";

/** Function number the built-in worker answers with `{"pid":N}`, its process id. */
export const LEGACY_FUNC_PID = 1001;

/** The single param of a {@linkcode LEGACY_CALL_METHOD} request. */
export interface LegacyCallRequest {
  /** The frame's `func_no` (uint32). */
  func_no: number;
  /** The frame's `flow_no` (int32), for logs; the proxy matches replies itself. */
  flow_no: number;
  /** The `user_id` of the JSON body: the routing key. */
  user_id: string;
  /** The body: text for `body_type` `'0'`, bytes otherwise. */
  body: string | Uint8Array;
}

/**
 * A legacy function: gets the request, returns (or resolves to) the reply
 * body. Throw a `ProxyError` with {@linkcode UNKNOWN_FUNCTION} to answer -1.
 */
export type LegacyFunction = (request: LegacyCallRequest) => unknown;

/** Legacy functions by function number. */
export type LegacyFunctions = Record<number, LegacyFunction>;

/**
 * The success text of the original workers for function `funcNo`.
 *
 * @param funcNo The function number.
 * @returns `handle <funcNo> function successful`.
 *
 * @example Usage
 * ```ts
 * import { handledText } from "./legacy_methods.ts";
 * console.log(handledText(1000)); // handle 1000 function successful
 * ```
 */
export function handledText(funcNo: number): string {
  return `handle ${funcNo} function successful`;
}

/**
 * The built-in worker's legacy functions: 1000 and 2000 answer
 * `handle <N> function successful` as the original workers did, and
 * {@linkcode LEGACY_FUNC_PID} (1001) answers `{"pid":N}` with the worker's
 * process id. (The proxy answers 2000 itself, so the worker's 2000 is only
 * reached by calling `legacy.call` on a worker directly.)
 *
 * @returns A new table of functions.
 *
 * @example Usage
 * ```ts
 * import { builtinLegacyFunctions } from "./legacy_methods.ts";
 * const fns = builtinLegacyFunctions();
 * console.log(fns[1000]!({ func_no: 1000, flow_no: 1, user_id: "allen", body: "{}" }));
 * // handle 1000 function successful
 * ```
 */
export function builtinLegacyFunctions(): LegacyFunctions {
  return {
    1000: () => handledText(1000),
    2000: () => handledText(2000),
    [LEGACY_FUNC_PID]: () => JSON.stringify({ pid: Deno.pid }),
  };
}

const UINT32_MAX = 0xffff_ffff;
const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;

function invalidParams(what: string): ProxyError {
  return new ProxyError(ErrorCode.INVALID_PARAMS, `Cannot call ${LEGACY_CALL_METHOD}: ${what}`);
}

/**
 * Checks the param of a {@linkcode LEGACY_CALL_METHOD} request and types it.
 *
 * @param value The first param as decoded.
 * @returns The request.
 * @throws {ProxyError} `INVALID_PARAMS` when it is not a {@linkcode LegacyCallRequest}.
 *
 * @example Usage
 * ```ts
 * import { parseLegacyCall } from "./legacy_methods.ts";
 * const req = parseLegacyCall({ func_no: 1000, flow_no: 3, user_id: "allen", body: "{}" });
 * console.log(req.func_no); // 1000
 * ```
 */
export function parseLegacyCall(value: unknown): LegacyCallRequest {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidParams("expected one map { func_no, flow_no, user_id, body }");
  }
  const v = value as Record<string, unknown>;
  const funcNo = v.func_no;
  if (
    typeof funcNo !== "number" || !Number.isInteger(funcNo) || funcNo < 0 || funcNo > UINT32_MAX
  ) {
    throw invalidParams("func_no must be an integer from 0 to 4294967295");
  }
  const flowNo = v.flow_no ?? 0;
  if (
    typeof flowNo !== "number" || !Number.isInteger(flowNo) || flowNo < INT32_MIN ||
    flowNo > INT32_MAX
  ) {
    throw invalidParams("flow_no must be a 32-bit integer");
  }
  const userId = v.user_id ?? "";
  if (typeof userId !== "string") throw invalidParams("user_id must be a string");
  const body = v.body ?? "";
  if (typeof body !== "string" && !(body instanceof Uint8Array)) {
    throw invalidParams("body must be a string or bin");
  }
  return { func_no: funcNo, flow_no: flowNo, user_id: userId, body };
}

/**
 * The {@linkcode LEGACY_CALL_METHOD} method over a table of functions: a
 * function number not in `functions` is answered with an
 * {@linkcode UNKNOWN_FUNCTION} error.
 *
 * @param functions The functions by number.
 * @returns The method.
 *
 * @example Usage
 * ```ts
 * import { legacyCallMethod } from "./legacy_methods.ts";
 * const call = legacyCallMethod({ 7: (req) => `seven for ${req.user_id}` });
 * console.log(await call({ func_no: 7, flow_no: 1, user_id: "bob", body: "{}" })); // seven for bob
 * ```
 */
export function legacyCallMethod(functions: LegacyFunctions): Method {
  return (param: unknown) => {
    const request = parseLegacyCall(param);
    const fn = Object.hasOwn(functions, request.func_no) ? functions[request.func_no] : undefined;
    if (!fn) {
      throw new ProxyError(
        UNKNOWN_FUNCTION,
        `Cannot handle function ${request.func_no}: unknown function number`,
      );
    }
    return fn(request);
  };
}

/**
 * The methods the built-in worker adds for the legacy protocol:
 * `legacy.call` over {@linkcode builtinLegacyFunctions} (or `functions`).
 *
 * @param functions The functions by number. @default {builtinLegacyFunctions()}
 * @returns `{ "legacy.call": ... }`.
 *
 * @example Usage
 * ```ts
 * import { legacyMethods } from "./legacy_methods.ts";
 * const methods = legacyMethods();
 * console.log(await methods["legacy.call"]!({ func_no: 2000, flow_no: 1, user_id: "a", body: "{}" }));
 * // handle 2000 function successful
 * ```
 */
export function legacyMethods(functions: LegacyFunctions = builtinLegacyFunctions()): Methods {
  return { [LEGACY_CALL_METHOD]: legacyCallMethod(functions) };
}
