import assert from "node:assert/strict";
import {
  currentRuntime,
  launchMode,
  type ProcessFacts,
  programCommandLine,
  runtimeFor,
  splitCommand,
  WORKER_SOCKET_ENV,
  workerCommandLine,
} from "../lib/process/self_command.ts";
import { REPO_ROOT } from "./helpers/process.ts";

// What each way of starting the program looks like from inside. Only the
// facts differ; runtimeFor() and workerCommandLine() must turn each into the
// command that starts one more of the same program.
const SOURCE: ProcessFacts = {
  standalone: false,
  execPath: "/usr/bin/deno",
  mainModule: "file:///app/tests/some_test.ts", // whoever runs: a test, a script, cli/main.ts
  moduleUrl: "file:///app/lib/process/self_command.ts",
  granted: ["read", "net"],
  gcExposed: true,
  fileExists: (path) => path === "/app/deno.json",
};
const COMPILED: ProcessFacts = {
  standalone: true,
  execPath: "/usr/local/bin/proxy",
  mainModule: "file:///tmp/deno-compile-proxy/cli/main.ts",
  moduleUrl: "file:///tmp/deno-compile-proxy/lib/process/self_command.ts",
  granted: [],
  gcExposed: true,
  fileExists: () => true,
};
const BUNDLE = "file:///usr/lib/node_modules/proxy/proxy.js";
const NPM: ProcessFacts = {
  standalone: false,
  execPath: "/usr/lib/node_modules/proxy/node_modules/deno/deno",
  mainModule: BUNDLE,
  moduleUrl: BUNDLE, // bundled: this code is in the main module
  granted: ["read", "net"],
  gcExposed: true,
  fileExists: () => true, // a deno.json above the package must still not be used
};
const BACKEND = ["backend", "--socket", "/s/w1.sock", "--parent-watch"];

Deno.test("launchMode() tells deno run, a compiled binary and the npm package's bundle apart", () => {
  assert.equal(launchMode(SOURCE), "source");
  assert.equal(launchMode(COMPILED), "compiled");
  assert.equal(launchMode(NPM), "bundle");
});

Deno.test("a worker under deno run re-runs cli/main.ts with the permissions, gc and deno.json", () => {
  const line = workerCommandLine({ socket: "/s/w1.sock", runtime: runtimeFor(SOURCE) });
  assert.equal(line.cmd, "/usr/bin/deno");
  assert.deepEqual(line.args, [
    "run",
    "--quiet",
    "--no-prompt",
    "--v8-flags=--expose-gc",
    "--allow-read",
    "--allow-net",
    "--config=/app/deno.json",
    "file:///app/cli/main.ts",
    ...BACKEND,
  ]);
});

Deno.test("a worker under deno run without a deno.json gets no --config", () => {
  const runtime = runtimeFor({ ...SOURCE, gcExposed: false, fileExists: () => false });
  assert.deepEqual(runtime.denoFlags, ["--quiet", "--no-prompt", "--allow-read", "--allow-net"]);
});

Deno.test("a worker of a compiled binary is the binary itself", () => {
  const line = workerCommandLine({ socket: "/s/w1.sock", runtime: runtimeFor(COMPILED) });
  assert.equal(line.cmd, "/usr/local/bin/proxy");
  assert.deepEqual(line.args, BACKEND);
});

Deno.test("a worker under the npm package's bin re-runs the bundle on the same deno, no config", () => {
  const line = workerCommandLine({ socket: "/s/w1.sock", runtime: runtimeFor(NPM) });
  assert.equal(line.cmd, "/usr/lib/node_modules/proxy/node_modules/deno/deno");
  assert.deepEqual(line.args, [
    "run",
    "--quiet",
    "--no-prompt",
    "--v8-flags=--expose-gc",
    "--allow-read",
    "--allow-net",
    "--no-config",
    BUNDLE,
    ...BACKEND,
  ]);
});

Deno.test("programCommandLine() keeps an explicit main module in every mode but the compiled one", () => {
  const main = "file:///elsewhere/cli/main.ts";
  assert.equal(programCommandLine(["serve"], runtimeFor(SOURCE, main)).args.at(-2), main);
  assert.equal(programCommandLine(["serve"], runtimeFor(NPM, main)).args.at(-2), main);
  assert.deepEqual(programCommandLine(["serve"], runtimeFor(COMPILED, main)).args, ["serve"]);
});

Deno.test("workerCommandLine() re-invokes a compiled binary directly with backend args", () => {
  const line = workerCommandLine({
    socket: "/tmp/p/w1.1.sock",
    backendArgs: ["--log-level", "warning"],
    runtime: {
      standalone: true,
      execPath: "/usr/local/bin/proxy",
      mainModule: "file:///ignored.ts",
      denoFlags: ["--x"],
    },
  });
  assert.equal(line.cmd, "/usr/local/bin/proxy");
  assert.deepEqual(line.args, [
    "backend",
    "--socket",
    "/tmp/p/w1.1.sock",
    "--parent-watch",
    "--log-level",
    "warning",
  ]);
  assert.deepEqual(line.env, { [WORKER_SOCKET_ENV]: "/tmp/p/w1.1.sock" });
});

Deno.test("workerCommandLine() under deno run prepends run, the deno flags and the main module", () => {
  const line = workerCommandLine({
    socket: "/tmp/p/w2.1.sock",
    runtime: {
      standalone: false,
      execPath: "/usr/bin/deno",
      mainModule: "file:///app/cli/main.ts",
      denoFlags: ["--quiet", "--allow-net", "--config=/app/deno.json"],
    },
  });
  assert.equal(line.cmd, "/usr/bin/deno");
  assert.deepEqual(line.args, [
    "run",
    "--quiet",
    "--allow-net",
    "--config=/app/deno.json",
    "file:///app/cli/main.ts",
    "backend",
    "--socket",
    "/tmp/p/w2.1.sock",
    "--parent-watch",
  ]);
});

Deno.test("workerCommandLine() runs a custom --worker-cmd with {socket} substituted", () => {
  const line = workerCommandLine({
    socket: "/tmp/p/w1.sock",
    workerCmd: `python3 "my worker.py" --sock={socket} 'a b'`,
  });
  assert.equal(line.cmd, "python3");
  assert.deepEqual(line.args, ["my worker.py", "--sock=/tmp/p/w1.sock", "a b"]);
  assert.equal(line.env[WORKER_SOCKET_ENV], "/tmp/p/w1.sock");
  assert.throws(() => workerCommandLine({ socket: "/s", workerCmd: "   " }), TypeError);
});

Deno.test("currentRuntime() under deno test passes the granted permissions and the project config", () => {
  const runtime = currentRuntime();
  assert.equal(runtime.standalone, false);
  assert.equal(runtime.execPath, Deno.execPath());
  assert.ok(runtime.denoFlags.includes("--allow-net"));
  assert.ok(runtime.denoFlags.includes(`--config=${REPO_ROOT}/deno.json`));
  assert.ok(!runtime.denoFlags.includes("--no-config"));
  // The program, not this test file, is what a worker runs.
  assert.equal(runtime.mainModule, new URL(`file://${REPO_ROOT}/cli/main.ts`).href);
});

Deno.test("splitCommand() respects quotes and escapes and rejects an open quote", () => {
  assert.deepEqual(splitCommand(`a  'b c' "d \\"e\\"" f\\ g`), ["a", "b c", 'd "e"', "f g"]);
  assert.deepEqual(splitCommand(`x ''`), ["x", ""]);
  assert.throws(() => splitCommand(`a "b`), SyntaxError);
});
