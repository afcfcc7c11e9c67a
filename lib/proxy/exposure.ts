/**
 * Who can reach the proxy, and what it lacks when that is more than this
 * machine: the warning `proxy serve` logs at start.
 *
 * @module
 */

/** Addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

/**
 * The warning for a proxy reachable from other machines without TLS or
 * without authentication, naming what is missing and how to add it; null
 * when there is nothing to warn about.
 *
 * @example Usage
 * ```ts
 * import { exposureWarning } from "./exposure.ts";
 * console.log(exposureWarning("127.0.0.1", { tls: false, auth: false })); // null
 * ```
 */
export function exposureWarning(
  host: string,
  security: { tls: boolean; auth: boolean; legacyUnauthenticated?: boolean },
): string | null {
  if (isLoopback(host)) return null;
  const { tls, auth } = security;
  const legacyOpen = auth && security.legacyUnauthenticated === true;
  if (tls && auth && !legacyOpen) return null;
  const missing = !tls && !auth
    ? "with neither TLS nor authentication: anyone who can reach this port can call every method, and requests travel in clear text"
    : !auth
    ? "without authentication: anyone who can reach this port can call every method"
    : !tls
    ? "without TLS: tokens and requests travel in clear text"
    : "with --legacy-unauthenticated: legacy-protocol clients are served without a token";
  const fix = [
    ...(!tls ? ["--tls-cert FILE --tls-key FILE"] : []),
    ...(!auth ? ["--auth-token-file FILE"] : []),
    ...(legacyOpen ? ["drop --legacy-unauthenticated"] : []),
  ].join(" and ");
  return `INSECURE: listening on ${host}, reachable from other machines, ${missing}. ` +
    `Fix: ${fix}, or listen on loopback (--host 127.0.0.1).`;
}
