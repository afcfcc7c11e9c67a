/**
 * The files `proxy serve` options name (certificates, token files, handler
 * modules), read before anything starts, so a bad one is reported at once,
 * by name, and `--check` finds what `serve` would.
 *
 * @module
 */

import { TokenSet } from "../auth/token_set.ts";
import { readCaCerts, readServerCert, type TlsServerCert } from "../net/tls.ts";
import { OptionError } from "../options/option.ts";
import type { ServeSettings } from "../options/serve_options.ts";

/** What the files hold. */
export interface ServeFiles {
  /** `--tls-cert` and `--tls-key`, checked to match. */
  tls: TlsServerCert | undefined;
  /** `--auth-token-file`. */
  tokens: TokenSet | undefined;
  /** `--admin-token-file`. */
  adminTokens: TokenSet | undefined;
  /** `--upstream-ca`. */
  upstreamCaCerts: string[] | undefined;
}

/**
 * Reads every file the options name, and checks that each local
 * `--handler` module exists.
 *
 * @throws {OptionError} Naming the flag and the file that cannot be used.
 */
export async function readServeFiles(s: ServeSettings): Promise<ServeFiles> {
  const files: ServeFiles = {
    tls: s.tlsCert === undefined ? undefined : await readServerCert(s.tlsCert, s.tlsKey!),
    tokens: s.authTokenFile === undefined ? undefined : await TokenSet.load(s.authTokenFile),
    adminTokens: s.adminTokenFile === undefined
      ? undefined
      : await TokenSet.load(s.adminTokenFile, "--admin-token-file"),
    upstreamCaCerts: s.upstreamCa === undefined
      ? undefined
      : await readCaCerts(s.upstreamCa, "--upstream-ca"),
  };
  for (const handler of s.handler) {
    // URLs (file:, https:, npm:, data:) are the worker's to load.
    if (/^[a-z][a-z0-9+.-]*:/i.test(handler)) continue;
    try {
      await Deno.stat(handler);
    } catch (err) {
      throw new OptionError("--handler", `cannot read ${handler}: ${(err as Error).message}`);
    }
  }
  return files;
}
