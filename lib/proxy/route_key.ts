/**
 * The routing key of a request in `dedicated` mode: a value found by a
 * dotted path into the request's first parameter.
 *
 * @module
 */

/**
 * Parses a `--route-key` path such as `user_id` or `0.tenant`.
 *
 * @throws {TypeError} On an empty path or an empty segment.
 */
export function parseRoutePath(path: string): string[] {
  const segments = path.split(".");
  if (segments.some((s) => s === "")) {
    throw new TypeError(`Cannot use route key path "${path}": empty segment`);
  }
  return segments;
}

/**
 * Follows `path` into `params[0]`: `user_id` reads `params[0].user_id`,
 * `0.tenant` reads `params[0][0].tenant`. A string or a finite number found
 * there is the key.
 *
 * @example Usage
 * ```ts
 * import { routeKey } from "./route_key.ts";
 * console.log(routeKey([{ user_id: "allen" }], ["user_id"])); // "allen"
 * ```
 *
 * @returns The key, or undefined when there is none.
 */
export function routeKey(params: readonly unknown[], path: readonly string[]): string | undefined {
  let value: unknown = params[0];
  for (const segment of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = Array.isArray(value)
      ? value[Number(segment)]
      : (value as Record<string, unknown>)[segment];
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}
