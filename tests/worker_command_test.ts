import assert from "node:assert/strict";
import {
  currentRuntime,
  splitCommand,
  WORKER_SOCKET_ENV,
  workerCommandLine,
} from "../lib/process/self_command.ts";

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
  assert.ok(runtime.denoFlags.some((f) => f.startsWith("--config=") && f.endsWith("/deno.json")));
});

Deno.test("splitCommand() respects quotes and escapes and rejects an open quote", () => {
  assert.deepEqual(splitCommand(`a  'b c' "d \\"e\\"" f\\ g`), ["a", "b c", 'd "e"', "f g"]);
  assert.deepEqual(splitCommand(`x ''`), ["x", ""]);
  assert.throws(() => splitCommand(`a "b`), SyntaxError);
});
