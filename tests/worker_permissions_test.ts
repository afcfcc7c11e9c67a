/**
 * Built-in workers under `deno run` get only what serving needs: their
 * socket, the program and their handler modules. A handler that reaches
 * for more gets PERMISSION_DENIED naming the `--worker-allow-*` flag, and
 * the worker goes on serving; the flag grants it. Unit tests of the command
 * line, end-to-end tests with real processes, port 0, temp dirs.
 */

import assert from "node:assert/strict";
import { Command } from "commander";
import { addOptions } from "../cli/_options.ts";
import { permissionError } from "../lib/backend/permission_error.ts";
import { WORKER_PERMISSION_OPTIONS } from "../lib/options/worker_permission_options.ts";
import { ErrorCode } from "../lib/protocol/errors.ts";
import { type Runtime, workerCommandLine } from "../lib/process/self_command.ts";
import {
  absoluteHandler,
  builtinWorkerRuntime,
  ignoredGrants,
  workerPermissionFlags,
} from "../lib/process/worker_permissions.ts";
import { startProxy } from "./helpers/proxy.ts";
import { REPO_ROOT, runProgram, tempDir } from "./helpers/process.ts";
import { errorOf } from "./helpers/wait.ts";

const NEEDY = `${REPO_ROOT}/tests/testdata/needy_handler.ts`;
const SOCKET = "/tmp/proxy-x/w1.1.sock";

const DENO_RUN: Runtime = {
  standalone: false,
  execPath: "/usr/bin/deno",
  mainModule: "file:///app/cli/main.ts",
  denoFlags: [
    "--quiet",
    "--no-prompt",
    "--allow-net",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
    "--allow-read",
    "--allow-write",
    "--config=/app/deno.json",
  ],
};

// Flags that let a worker do more than serve its socket and read code.
function wideFlags(args: readonly string[]): string[] {
  return args.filter((a) =>
    /^--allow-(env|run|sys|ffi|all)\b/.test(a) || a === "-A" ||
    /^--allow-(read|write|net)$/.test(a) ||
    (a.startsWith("--allow-net=") && a.slice(12).split(",").some((x) => !x.startsWith("unix:")))
  );
}

Deno.test("a built-in worker's command line under deno run grants its socket, the program and its handlers: no network, env or run", () => {
  const line = workerCommandLine({
    socket: SOCKET,
    backendArgs: ["--handler", "/srv/h.ts"],
    permissions: { handlers: ["/srv/h.ts"] },
    runtime: DENO_RUN,
  });
  assert.equal(line.cmd, "/usr/bin/deno");
  assert.deepEqual(line.args, [
    "run",
    "--quiet",
    "--config=/app/deno.json",
    "--no-prompt",
    `--allow-net=unix:${SOCKET}`,
    `--allow-read=${SOCKET},/app,/srv/h.ts`,
    `--allow-write=${SOCKET}`,
    "file:///app/cli/main.ts",
    "backend",
    "--socket",
    SOCKET,
    "--parent-watch",
    "--handler",
    "/srv/h.ts",
  ]);
  assert.deepEqual(wideFlags(line.args), []);
});

Deno.test("--worker-allow-* grants add to a worker's flags: a list is scoped, the flag alone grants all", () => {
  assert.deepEqual(
    workerPermissionFlags(SOCKET, {
      grants: {
        net: ["example.com:443", "10.0.0.1"],
        env: ["HOME"],
        run: true,
        read: ["/data"],
        write: ["/data/out"],
        sys: ["hostname"],
        ffi: true,
      },
    }, null),
    [
      `--allow-net=unix:${SOCKET},example.com:443,10.0.0.1`,
      "--allow-env=HOME",
      "--allow-run",
      `--allow-read=${SOCKET},/data`,
      `--allow-write=${SOCKET},/data/out`,
      "--allow-sys=hostname",
      "--allow-ffi",
    ],
  );
  assert.deepEqual(workerPermissionFlags(SOCKET, { grants: { net: true, read: true } }, "/app"), [
    "--allow-net",
    "--allow-read",
    `--allow-write=${SOCKET}`,
  ]);
});

Deno.test("a worker may import a remote handler module from its host only; a path with a comma is refused", () => {
  const flags = workerPermissionFlags(SOCKET, {
    handlers: ["https://example.com:8443/h.ts", "npm:some-handlers", "file:///srv/a%20b.ts"],
  }, null);
  assert.ok(flags.includes(`--allow-read=${SOCKET},/srv/a b.ts`), flags.join(" "));
  assert.equal(flags.at(-1), "--allow-import=example.com:8443");
  assert.throws(
    () => workerPermissionFlags(SOCKET, { grants: { read: ["/a,b"] } }, null),
    /Cannot grant a worker read access to "\/a,b"/,
  );
  assert.equal(absoluteHandler("h/x.ts", "/srv/app"), "/srv/app/h/x.ts");
  assert.equal(absoluteHandler("../x.ts", "/srv/app"), "/srv/x.ts");
  assert.equal(absoluteHandler("https://e.com/x.ts", "/srv"), "https://e.com/x.ts");
});

Deno.test("a compiled binary's workers get no deno flags: its permissions are baked in", () => {
  const compiled: Runtime = { ...DENO_RUN, standalone: true, execPath: "/usr/local/bin/proxy" };
  assert.equal(builtinWorkerRuntime(compiled, SOCKET, {}), compiled);
  const line = workerCommandLine({ socket: SOCKET, permissions: {}, runtime: compiled });
  assert.deepEqual(line.args, ["backend", "--socket", SOCKET, "--parent-watch"]);
});

Deno.test("--worker-allow-* given where it cannot apply is named in a warning", () => {
  const grants = { net: true, env: ["HOME"], run: false };
  assert.equal(ignoredGrants(grants, { standalone: false, workerCmd: false }), null);
  assert.equal(ignoredGrants({ net: false }, { standalone: true, workerCmd: false }), null);
  assert.equal(
    ignoredGrants(grants, { standalone: true, workerCmd: false }),
    "--worker-allow-net, --worker-allow-env: no effect in a compiled binary (its workers have the permissions compiled into it)",
  );
  assert.match(ignoredGrants(grants, { standalone: false, workerCmd: true })!, /--worker-cmd/);
});

Deno.test("--no-prompt is kept even when the proxy runs without it, so no prompt can block a worker", () => {
  const runtime = builtinWorkerRuntime({ ...DENO_RUN, denoFlags: ["-A"] }, SOCKET, {});
  assert.deepEqual(runtime.denoFlags.filter((f) => !f.startsWith("--allow-")), ["--no-prompt"]);
});

Deno.test("serve's --worker-allow-* flags parse like deno's: alone all, lists add up", () => {
  const parse = (...args: string[]) =>
    addOptions(
      new Command().exitOverride().configureOutput({ writeErr: () => {} }),
      WORKER_PERMISSION_OPTIONS,
    )
      .parse(args, { from: "user" }).opts();
  assert.deepEqual(parse(), {});
  assert.deepEqual(parse("--worker-allow-net"), { workerAllowNet: true });
  assert.deepEqual(
    parse("--worker-allow-net=a.com,b.com:80", "--worker-allow-net", "c.com", "--worker-allow-env"),
    { workerAllowNet: ["a.com", "b.com:80", "c.com"], workerAllowEnv: true },
  );
  assert.deepEqual(parse("--worker-allow-read=/x", "--worker-allow-read"), {
    workerAllowRead: true,
  });
  assert.deepEqual(parse("--worker-allow-read", "--worker-allow-read=/x"), {
    workerAllowRead: true,
  });
  assert.throws(() => parse("--worker-allow-env=,"), /expected a comma-separated list/);
});

Deno.test("permissionError() names the flag that grants what a handler lacked", () => {
  const err = permissionError(
    new Deno.errors.NotCapable(
      'Requires net access to "example.com:80", run again with the --allow-net flag',
    ),
    "Cannot call probe",
  )!;
  assert.equal(err.code, ErrorCode.PERMISSION_DENIED);
  assert.match(
    err.message,
    /^Cannot call probe: requires net access to "example\.com:80": start the proxy with --worker-allow-net=example\.com:80 \(or --worker-allow-net for all\)/,
  );
  assert.deepEqual(err.data, {
    permission: "net",
    target: "example.com:80",
    flag: "--worker-allow-net",
  });
  // The operating system's refusal is no Deno permission: a plain handler error.
  assert.equal(permissionError(new Deno.errors.PermissionDenied("EACCES: open /x"), "x"), null);
  assert.equal(permissionError(new Error("Requires net access"), "x"), null);
});

// A listener of the test's own: an HTTP server on 127.0.0.1, port 0.
function httpServer(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("hello from the test"),
  );
}

// Through `cat`: Deno lets a process read another's /proc entry only with
// --allow-all, which the test task does not grant.
async function workerCmdline(pid: number): Promise<string[]> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/cmdline`] }).output();
  return new TextDecoder().decode(out.stdout).split("\0").filter(Boolean);
}

Deno.test("without --worker-allow-net/-env a handler gets PERMISSION_DENIED naming the flag; echo on the same worker still answers", async () => {
  await using server = httpServer();
  const port = server.addr.port;
  await using p = await startProxy(["--workers", "1", "--handler", NEEDY], {
    env: { PROXY_TEST_SECRET: "s3cret" },
  });
  const before = (await p.stats()).workers[0]!;
  // What the worker really runs with.
  const cmdline = await workerCmdline(before.pid!);
  assert.ok(cmdline.includes("--no-prompt"), cmdline.join(" "));
  assert.deepEqual(wideFlags(cmdline), [], cmdline.join(" "));

  const connect = await errorOf(p.client.call("connectTo", [port]));
  assert.equal(connect.code, ErrorCode.PERMISSION_DENIED);
  assert.match(
    connect.message,
    new RegExp(
      `^Cannot call connectTo: requires net access to "127\\.0\\.0\\.1:${port}": start the proxy with --worker-allow-net`,
    ),
  );
  const get = await errorOf(p.client.call("fetchText", [`http://127.0.0.1:${port}/`]));
  assert.equal(get.code, ErrorCode.PERMISSION_DENIED);
  assert.match(get.message, /--worker-allow-net/);
  const env = await errorOf(p.client.call("readEnv", ["PROXY_TEST_SECRET"]));
  assert.equal(env.code, ErrorCode.PERMISSION_DENIED);
  assert.match(env.message, /requires env access to "PROXY_TEST_SECRET": .*--worker-allow-env/);

  assert.equal(await p.client.call("echo", ["still served"]), "still served");
  const after = (await p.stats()).workers[0]!;
  assert.equal(after.pid, before.pid, "the same worker");
  assert.equal(after.restarts, 0);
});

Deno.test("--worker-allow-net=HOST:PORT and --worker-allow-env=NAME grant a handler what it needs", async () => {
  await using server = httpServer();
  const port = server.addr.port;
  await using p = await startProxy([
    ...["--workers", "1", "--handler", NEEDY],
    `--worker-allow-net=127.0.0.1:${port}`,
    "--worker-allow-env=PROXY_TEST_SECRET",
  ], { env: { PROXY_TEST_SECRET: "s3cret" } });
  assert.equal(await p.client.call("connectTo", [port]), "connected");
  assert.equal(
    await p.client.call("fetchText", [`http://127.0.0.1:${port}/`]),
    "hello from the test",
  );
  assert.equal(await p.client.call("readEnv", ["PROXY_TEST_SECRET"]), "s3cret");
  // Granted what was listed, nothing more.
  const other = await errorOf(p.client.call("readEnv", ["HOME"]));
  assert.equal(other.code, ErrorCode.PERMISSION_DENIED);
});

Deno.test("a handler module importing files the workers may not read stops the start with a message naming --worker-allow-read", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.join("helper.ts"), "export const twice = (n: number) => 2 * n;\n");
  await Deno.writeTextFile(
    dir.join("main_handler.ts"),
    'import { twice } from "./helper.ts";\nexport function double(n: number) { return twice(n); }\n',
  );
  const args = ["serve", "--port", "0", "--workers", "1", "--handler", dir.join("main_handler.ts")];
  const refused = await runProgram(args);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /Cannot start worker 1: exited with code 1 while starting/);
  assert.match(
    refused.stderr,
    new RegExp(
      `Cannot load handler module .*main_handler\\.ts: requires read access to "${dir.path}/helper\\.ts": start the proxy with --worker-allow-read`,
    ),
  );
  await using p = await startProxy([...args.slice(3), `--worker-allow-read=${dir.path}`]);
  assert.equal(await p.client.call("double", [21]), 42);
});
