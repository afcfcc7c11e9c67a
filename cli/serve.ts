/**
 * `proxy serve` (alias `proxy proxy`): the front proxy and its workers.
 *
 * @module
 */

import { Command } from "commander";
import {
  loadServeSettings,
  SERVE_OPTIONS,
  type ServeSettings,
} from "../lib/options/serve_options.ts";
import { runProxy } from "../lib/proxy/run_proxy.ts";
import { readServeFiles } from "../lib/proxy/serve_files.ts";
import { addOptions, setUpLogging } from "./_options.ts";

/** Builds the `serve` subcommand. */
export function serveCommand(): Command {
  const cmd = new Command("serve")
    .alias("proxy")
    .description(
      "Accept MessagePack-RPC clients on TCP and spread each request over isolated worker processes.",
    )
    .addHelpText(
      "after",
      `
Durations take ms, s, m, h (a bare number is milliseconds); sizes take k, m, g (KiB, MiB, GiB).
Signals: SIGINT/SIGTERM drain and stop; SIGHUP re-reads --config and the token files, and
replaces the workers one at a time.
Examples:
  proxy serve --config proxy.toml --admin 127.0.0.1:9090
  proxy serve --config proxy.toml --check
  proxy serve --port 8080 --workers 4
  proxy serve --pool dynamic --min-workers 2 --max-workers 16 --min-spare 2 --max-spare 4
  proxy serve --pool dedicated --route-key user_id --max-workers 100 --idle-timeout 5m
  proxy serve --worker-cmd "python3 my_worker.py {socket}" --request-timeout 5s --kill-after 10s
  proxy serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem --auth-token-file tokens.txt`,
    );
  addOptions(cmd, SERVE_OPTIONS);
  return cmd.action(async (opts: Partial<ServeSettings>) => {
    // Flags and the config file, checked together before anything starts.
    const settings = await loadServeSettings(opts);
    if (settings.check) {
      await readServeFiles(settings);
      console.log(`${settings.config ?? "options"}: OK`);
      return;
    }
    await setUpLogging(settings);
    await runProxy({ ...opts, onReconfigure: (s) => setUpLogging(s) });
  });
}
