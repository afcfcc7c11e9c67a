#!/usr/bin/env node
// The `proxy` command of the npm package: runs the bundled program on the
// Deno binary that the package's `deno` dependency installed, with the flags
// of `deno task proxy` (launch.json, written by `deno task npm`). The program
// re-invokes that binary directly for its workers; this script only starts it,
// passes signals on and exits as it exits.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const tty = require("node:tty");

const root = path.join(__dirname, "..");
const launch = JSON.parse(fs.readFileSync(path.join(root, "launch.json"), "utf8"));

function denoBinary() {
  const dir = path.dirname(require.resolve("deno/package.json"));
  const exe = path.join(dir, process.platform === "win32" ? "deno.exe" : "deno");
  if (fs.existsSync(exe)) return exe;
  // Installed with --ignore-scripts: the package's own installer finds the
  // binary in its platform package.
  return require("deno/install_api.cjs").runInstall();
}

const child = spawn(
  denoBinary(),
  ["run", ...launch.denoFlags, path.join(root, launch.main), ...process.argv.slice(2)],
  { stdio: "inherit", env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" } },
);

// A supervisor signals this process; the program must hear it. Ctrl-C on a
// terminal reaches the program already (it is in our process group), so a
// SIGINT is passed on only when stdin is no terminal, to not deliver it twice.
const forwarded = ["SIGTERM", "SIGHUP", "SIGINT"];
const handlers = new Map();
for (const signal of forwarded) {
  if (process.platform === "win32" && signal !== "SIGINT") continue;
  const handler = () => {
    if (signal === "SIGINT" && tty.isatty(0)) return;
    try {
      child.kill(signal);
    } catch {
      // exited in the meantime
    }
  };
  handlers.set(signal, handler);
  process.on(signal, handler);
}

child.on("error", (err) => {
  console.error(`proxy: cannot start deno: ${err.message}`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so whoever waits for us sees what happened.
    for (const [name, handler] of handlers) process.off(name, handler);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
