/**
 * The `proxy` program: `serve` (alias `proxy`), `backend`, `client`, `test`.
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import denoJson from "../deno.json" with { type: "json" };
import { closeLogging, getLogger, loggingToFile } from "../lib/log.ts";
import { OptionError } from "../lib/options/option.ts";
import { backendCommand } from "./backend.ts";
import { clientCommand } from "./client.ts";
import { serveCommand } from "./serve.ts";
import { testCommand } from "./test.ts";

/** Exit code of a usage error (unknown option, bad value, missing argument). */
export const EXIT_USAGE = 2;

/** Builds the program with all its subcommands. */
export function buildProgram(): Command {
  const program = new Command("proxy")
    .description(
      "A process-isolating MessagePack-RPC proxy: spreads requests over worker processes it supervises.",
    )
    .version(denoJson.version, "-V, --version")
    .showHelpAfterError("(add --help for usage)");
  for (const cmd of [serveCommand(), backendCommand(), clientCommand(), testCommand()]) {
    program.addCommand(cmd);
  }
  // Every command reports usage errors by throwing, so main() picks the exit code.
  const apply = (cmd: Command) => {
    cmd.exitOverride().showHelpAfterError("(add --help for usage)");
    cmd.commands.forEach(apply);
  };
  apply(program);
  return program;
}

/**
 * Runs the program with `args`; returns the exit code.
 */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    return await run(program, args);
  } finally {
    // A log file's last lines ("Proxy stopped") are written before exit.
    await closeLogging();
  }
}

async function run(program: Command, args: string[]): Promise<number> {
  try {
    await program.parseAsync(args, { from: "user" });
    return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" || err.code === "commander.version" ||
        err.code === "commander.help"
      ) {
        return 0;
      }
      // commander already printed the message for its own parse errors.
      if (err.code === "commander.invalidArgument" && !err.message.startsWith("error:")) {
        console.error(`proxy: error: ${err.message}`);
      }
      return EXIT_USAGE;
    }
    // A value the library refused (a config file's, or one checked only
    // together with others) is a usage error too.
    if (err instanceof OptionError) {
      console.error(`proxy: error: ${err.message}`);
      return EXIT_USAGE;
    }
    const message = err instanceof Error ? err.message : String(err);
    console.error(`proxy: ${message}`);
    if (loggingToFile()) getLogger([]).fatal(message);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
