import assert from "node:assert/strict";
import { encodeValue as pack } from "../lib/protocol/encode.ts";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { ErrorCode, ProxyError, RemoteError } from "../lib/protocol/errors.ts";
import {
  exists,
  PERMISSION_FLAGS,
  programArgs,
  REPO_ROOT,
  runProgram,
  spawnDeno,
  spawnProgram,
  splitHostPort,
  tempDir,
  waitListening,
} from "./helpers/process.ts";
import { RawConnection } from "./helpers/raw_conn.ts";

/** Runs `proxy client ADDRESS ...` against a backend's logged address. */
function client(address: string, ...args: string[]) {
  if (address.startsWith("unix:")) return runProgram(["client", address, ...args]);
  const { hostname, port } = splitHostPort(address);
  return runProgram(["client", hostname, String(port), ...args]);
}

function assertRemoteError(code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RemoteError, String(err));
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  };
}

Deno.test("proxy backend answers the built-in methods called through proxy client", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  assert.equal(address, `unix:${dir.join("w.sock")}`);

  const [ping, json, word, spaced, sleep, info] = await Promise.all([
    client(address, "ping"),
    client(address, "echo", '{"a": [1, 2.5, null], "b": "x y"}'),
    client(address, "echo", "hello"),
    client(address, "echo", "hello world"),
    client(address, "sleep", "20"),
    client(address, "info"),
  ]);
  assert.deepEqual(ping, { code: 0, stdout: '"pong"\n', stderr: "" });
  assert.deepEqual(json, { code: 0, stdout: '{"a":[1,2.5,null],"b":"x y"}\n', stderr: "" });
  assert.deepEqual(word, { code: 0, stdout: '"hello"\n', stderr: "" });
  assert.deepEqual(spaced, { code: 0, stdout: '"hello world"\n', stderr: "" });
  assert.deepEqual(sleep, { code: 0, stdout: "null\n", stderr: "" });
  assert.equal(info.code, 0);
  const stats = JSON.parse(info.stdout);
  assert.equal(stats.pid, backend.pid);
  assert.equal(typeof stats.uptime_s, "number");
  assert.ok(stats.uptime_s >= 0);
  assert.ok(stats.requests >= 0 && stats.requests <= 5);

  const later = JSON.parse((await client(address, "info")).stdout);
  assert.ok(later.requests >= 6, `requests counted: ${later.requests}`);
});

Deno.test("proxy backend answers errors that proxy client prints with exit code 1", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);

  const [fail, failDefault, badSleep, unknown, inherited] = await Promise.all([
    client(address, "fail", "boom"),
    client(address, "fail"),
    client(address, "sleep", "-5"),
    client(address, "no_such_method", "1"),
    client(address, "hasOwnProperty", "x"),
  ]);
  assert.deepEqual(fail, { code: 1, stdout: "", stderr: "HANDLER_ERROR: boom\n" });
  assert.deepEqual(failDefault, { code: 1, stdout: "", stderr: "HANDLER_ERROR: fail() called\n" });
  assert.equal(badSleep.code, 1);
  assert.match(badSleep.stderr, /^INVALID_PARAMS: Cannot sleep/);
  assert.deepEqual(unknown, {
    code: 1,
    stdout: "",
    stderr: "METHOD_NOT_FOUND: Cannot call no_such_method: no such method\n",
  });
  assert.equal(inherited.code, 1);
  assert.match(inherited.stderr, /^METHOD_NOT_FOUND/);
});

Deno.test("proxy backend exits on crash and the client reports the lost connection", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);

  const result = await client(address, "crash");
  assert.equal(result.code, 3);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^proxy client: .*connection closed/m);
  const status = await backend.waitExit();
  assert.equal(status.success, false);
  assert.equal(status.code, 70);
});

Deno.test("RpcClient gets answers out of order on one connection to a backend", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const rpc = await RpcClient.connect(await waitListening(backend));
  try {
    const order: string[] = [];
    const slow = rpc.call("sleep", [200]).then((r) => order.push(`sleep:${r}`));
    const fast = rpc.call("echo", ["fast"]).then((r) => order.push(`echo:${r}`));
    assert.equal(rpc.inFlight, 2);
    await fast;
    assert.deepEqual(order, ["echo:fast"]);
    await slow;
    assert.deepEqual(order, ["echo:fast", "sleep:null"]);

    // Many pipelined calls each get their own answer.
    const values = Array.from({ length: 200 }, (_, i) => ({ i, s: "v".repeat(i) }));
    assert.deepEqual(await Promise.all(values.map((v) => rpc.call("echo", [v]))), values);
    await assert.rejects(rpc.call("fail", ["nope"]), assertRemoteError("HANDLER_ERROR", /^nope$/));
    await assert.rejects(rpc.call("missing"), assertRemoteError("METHOD_NOT_FOUND"));
    assert.equal(rpc.inFlight, 0);
  } finally {
    rpc.close();
  }
});

Deno.test("RpcClient.call() times out, aborts, and fails in-flight calls when the backend dies", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const rpc = await RpcClient.connect(await waitListening(backend));
  try {
    await assert.rejects(rpc.call("sleep", [2000], { timeout: 50 }), (err: unknown) => {
      assert.ok(err instanceof ProxyError && !(err instanceof RemoteError));
      assert.equal(err.code, ErrorCode.TIMEOUT);
      return true;
    });
    const controller = new AbortController();
    const aborted = rpc.call("sleep", [2000], { signal: controller.signal });
    controller.abort();
    await assert.rejects(aborted, { code: ErrorCode.ABORTED });
    await assert.rejects(rpc.call("ping", [], { signal: AbortSignal.abort() }), {
      code: ErrorCode.ABORTED,
    });
    assert.equal(await rpc.call("ping"), "pong", "the connection survives timeouts and aborts");

    const pending = rpc.call("sleep", [5000]);
    await rpc.call("crash").catch(() => {});
    await assert.rejects(pending, { code: ErrorCode.CONNECTION_CLOSED });
    await rpc.done;
    assert.equal(rpc.closed, true);
    await assert.rejects(rpc.call("ping"), { code: ErrorCode.CONNECTION_CLOSED });
    assert.throws(() => rpc.notify("shutdown"), { code: ErrorCode.CONNECTION_CLOSED });
    assert.equal((await backend.waitExit()).code, 70);
  } finally {
    rpc.close();
  }
});

Deno.test("RpcClient.connect() fails with CONNECT_FAILED when no backend listens", async () => {
  await using dir = await tempDir();
  await assert.rejects(RpcClient.connect(`unix:${dir.join("none.sock")}`), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, ErrorCode.CONNECT_FAILED);
    assert.match(err.message, /^Cannot connect to .*none\.sock: /);
    assert.ok(err.cause instanceof Error);
    return true;
  });
});

Deno.test("proxy backend --listen 127.0.0.1:0 serves TCP on the port it logs", async () => {
  await using backend = spawnProgram(["backend", "--test-methods", "--listen", "127.0.0.1:0"]);
  const address = await waitListening(backend);
  const { hostname, port } = splitHostPort(address);
  assert.equal(hostname, "127.0.0.1");
  assert.ok(port > 0 && port < 65536, address);
  assert.deepEqual(await client(address, "echo", "[1, 2]"), {
    code: 0,
    stdout: "[1,2]\n",
    stderr: "",
  });
  const rpc = await RpcClient.connect(address);
  try {
    assert.equal(await rpc.call("ping"), "pong");
  } finally {
    rpc.close();
  }
});

Deno.test("proxy backend listens on $PROXY_WORKER_SOCKET when given no address", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend"], {
    env: { PROXY_WORKER_SOCKET: dir.join("env.sock") },
  });
  assert.equal(await waitListening(backend), `unix:${dir.join("env.sock")}`);
});

Deno.test("proxy backend serves no crash, sleep or fail unless --test-methods", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  const results = await Promise.all([
    client(address, "crash"),
    client(address, "sleep", "1"),
    client(address, "fail", "x"),
  ]);
  for (const result of results) {
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^METHOD_NOT_FOUND: /);
  }
  assert.equal((await client(address, "ping")).stdout, '"pong"\n');
  assert.equal(backend.exited, false, "crash must not have run");
});

Deno.test("proxy backend --handler serves a module's sync, async and throwing functions", async () => {
  await using dir = await tempDir();
  // A relative path is resolved against the working directory.
  await using backend = spawnProgram(
    [
      "backend",
      "--test-methods",
      "--handler",
      "tests/testdata/handlers.ts",
      "--socket",
      dir.join("w.sock"),
    ],
    { cwd: REPO_ROOT },
  );
  const address = await waitListening(backend);
  const [add, greet, explode, rejectLater, twice, constant, ping] = await Promise.all([
    client(address, "add", "2", "40"),
    client(address, "greet", "Ann"),
    client(address, "explode"),
    client(address, "rejectLater"),
    client(address, "twice", "21"),
    client(address, "VERSION"),
    client(address, "ping"),
  ]);
  assert.deepEqual(add, { code: 0, stdout: "42\n", stderr: "" });
  assert.deepEqual(greet, { code: 0, stdout: '"Hello, Ann"\n', stderr: "" });
  assert.deepEqual(explode, { code: 1, stdout: "", stderr: "HANDLER_ERROR: kaboom\n" });
  assert.deepEqual(rejectLater, { code: 1, stdout: "", stderr: "HANDLER_ERROR: rejected later\n" });
  assert.deepEqual(twice, { code: 0, stdout: "42\n", stderr: "" });
  assert.match(constant.stderr, /^METHOD_NOT_FOUND/);
  assert.equal(ping.stdout, '"pong"\n', "built-in methods stay");
});

Deno.test("proxy backend --handler refuses a module that exports no function", async () => {
  await using dir = await tempDir();
  const result = await runProgram([
    "backend",
    "--handler",
    `${REPO_ROOT}/tests/testdata/no_functions.ts`,
    "--socket",
    dir.join("w.sock"),
  ]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /Cannot load handler module .*no_functions\.ts: it exports no function/,
  );
  assert.equal(await exists(dir.join("w.sock")), false);
});

Deno.test("proxy backend closes a connection that sends byte 0xc1 and keeps serving new ones", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  {
    await using bad = await RawConnection.open(address);
    await bad.write(new Uint8Array([0xc1]));
    assert.deepEqual(await bad.receiveAll(), [], "no answer: no msgid to answer to");
  }
  {
    await using bad = await RawConnection.open(address);
    // The msgid is readable before the bad byte: the answer carries it.
    await bad.write(new Uint8Array([0x94, 0x00, 0x21, 0xa4, 0x65, 0x63, 0x68, 0x6f, 0x91, 0xc1]));
    const [answer, ...rest] = await bad.receiveAll();
    assert.deepEqual(rest, []);
    assert.deepEqual((answer as unknown[]).slice(0, 2), [1, 0x21]);
    assert.equal((answer as [number, number, { code: string }])[2].code, ErrorCode.PARSE_ERROR);
  }
  await using good = await RawConnection.open(address);
  await good.send([0, 1, "echo", ["still here"]]);
  assert.deepEqual(await good.receive(), [1, 1, null, "still here"]);
});

Deno.test("proxy backend answers an invalid request with INVALID_REQUEST and its msgid, then closes", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  for (const bad of [[0, 77, 5, []], [0, 77, "echo", "not an array"], [0, 77, "echo"]]) {
    await using conn = await RawConnection.open(address);
    await conn.send(bad);
    const answers = await conn.receiveAll();
    assert.equal(answers.length, 1, JSON.stringify(bad));
    const [type, msgid, error, result] = answers[0] as [
      number,
      number,
      Record<string, unknown>,
      unknown,
    ];
    assert.deepEqual([type, msgid, result], [1, 77, null]);
    assert.equal(error.code, ErrorCode.INVALID_REQUEST);
    assert.match(String(error.message), /^Cannot accept/);
  }
  {
    // Requests before the bad one are answered; nothing after it is served.
    await using conn = await RawConnection.open(address);
    await conn.write(
      new Uint8Array([
        ...pack([0, 1, "sleep", [50]]),
        ...pack([0, 5, "echo", {}]),
        ...pack([0, 6, "ping", []]),
      ]),
    );
    const answers = await conn.receiveAll() as [number, number, { code: string } | null, unknown][];
    assert.deepEqual(answers.map(([, msgid, error]) => [msgid, error?.code ?? null]), [
      [5, ErrorCode.INVALID_REQUEST],
      [1, null],
    ]);
  }
  {
    // Without a msgid there is no one to answer: the connection just closes.
    await using conn = await RawConnection.open(address);
    await conn.send({ not: "a message" });
    assert.deepEqual(await conn.receiveAll(), []);
  }
  await using good = await RawConnection.open(address);
  await good.send([0, 2, "ping", []]);
  assert.deepEqual(await good.receive(), [1, 2, null, "pong"]);
});

Deno.test("proxy backend answers an oversize message with MESSAGE_TOO_LARGE and its msgid, then closes", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram([
    "backend",
    "--test-methods",
    "--max-message-size",
    "1k",
    "--socket",
    dir.join("w.sock"),
  ]);
  const address = await waitListening(backend);
  {
    await using conn = await RawConnection.open(address);
    await conn.send([0, 78, "echo", ["x".repeat(4000)]]);
    const answers = await conn.receiveAll();
    assert.equal(answers.length, 1);
    const [type, msgid, error, result] = answers[0] as [
      number,
      number,
      Record<string, unknown>,
      unknown,
    ];
    assert.deepEqual([type, msgid, result], [1, 78, null]);
    assert.equal(error.code, ErrorCode.MESSAGE_TOO_LARGE);
    assert.deepEqual(error.data, { limit: 1024 });
  }
  await using good = await RawConnection.open(address);
  const fits = "y".repeat(1000);
  await good.send([0, 3, "echo", [fits]]);
  assert.deepEqual(await good.receive(), [1, 3, null, fits]);
  assert.ok(pack([1, 3, null, fits]).length <= 1024);
});

Deno.test("proxy backend answers every request before closing a connection whose peer stopped writing", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  await using conn = await RawConnection.open(await waitListening(backend));
  await conn.write(new Uint8Array([...pack([0, 1, "sleep", [100]]), ...pack([0, 2, "ping", []])]));
  await conn.closeWrite();
  assert.deepEqual(await conn.receiveAll(), [[1, 2, null, "pong"], [1, 1, null, null]]);
});

Deno.test("proxy backend on SIGTERM finishes the request in flight, removes its socket and exits 0", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", socket]);
  const address = await waitListening(backend);
  const rpc = await RpcClient.connect(address);
  try {
    const slow = rpc.call("sleep", [300]);
    slow.catch(() => {}); // awaited below; keeps an early failure from going unhandled
    // Requests on one connection are read in order: once ping is answered,
    // the sleep has started.
    assert.equal(await rpc.call("ping"), "pong");
    backend.kill("SIGTERM");
    await backend.waitForLine(/stopping: "?signal/);
    // No new work is taken: a late connection is refused, or closed unanswered.
    const late = await RpcClient.connect(address).then(
      async (c) => {
        try {
          return await c.call("ping");
        } catch (err) {
          return (err as ProxyError).code;
        } finally {
          c.close();
        }
      },
      (err: ProxyError) => err.code,
    );
    assert.ok(
      late === ErrorCode.CONNECT_FAILED || late === ErrorCode.CONNECTION_CLOSED,
      `late call got ${late}`,
    );
    assert.equal(await slow, null, "the request in flight is answered");
    const status = await backend.waitExit();
    assert.equal(status.code, 0);
    assert.equal(await exists(socket), false);
  } finally {
    rpc.close();
  }
});

Deno.test("proxy backend --drain-timeout bounds how long SIGTERM waits for requests in flight", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  await using backend = spawnProgram([
    "backend",
    "--test-methods",
    "--drain-timeout",
    "100ms",
    "--socket",
    socket,
  ]);
  const rpc = await RpcClient.connect(await waitListening(backend));
  try {
    const slow = rpc.call("sleep", [20_000]);
    slow.catch(() => {}); // awaited below
    assert.equal(await rpc.call("ping"), "pong");
    const started = performance.now();
    backend.kill("SIGTERM");
    await assert.rejects(slow, { code: ErrorCode.CONNECTION_CLOSED });
    assert.equal((await backend.waitExit()).code, 0);
    assert.ok(performance.now() - started < 5000, "did not wait for the sleep");
    assert.equal(await exists(socket), false);
  } finally {
    rpc.close();
  }
});

Deno.test("proxy backend stops on a shutdown notification", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", socket]);
  const rpc = await RpcClient.connect(await waitListening(backend));
  try {
    rpc.notify("shutdown");
    assert.equal((await backend.waitExit()).code, 0);
    assert.match(backend.stderr, /stopping: "?shutdown notification/);
    assert.equal(await exists(socket), false);
  } finally {
    rpc.close();
  }
});

Deno.test("proxy backend --parent-watch exits when its stdin closes", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  await using backend = spawnProgram([
    "backend",
    "--test-methods",
    "--parent-watch",
    "--socket",
    socket,
  ], {
    stdin: "piped",
  });
  const address = await waitListening(backend);
  await backend.writeStdin("anything the parent writes is ignored\n");
  assert.equal((await client(address, "ping")).stdout, '"pong"\n');
  await backend.closeStdin();
  assert.equal((await backend.waitExit()).code, 0);
  assert.match(backend.stderr, /stopping: "?parent gone/);
  assert.equal(await exists(socket), false);
});

Deno.test("proxy backend --parent-watch exits when its parent is killed with SIGKILL", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  // The parent shares its stderr with the backend, so the backend's log still
  // reaches this test after the parent is gone.
  await using parent = spawnDeno([
    "run",
    ...PERMISSION_FLAGS,
    `${REPO_ROOT}/tests/testdata/parent.ts`,
    ...programArgs("backend", "--test-methods", "--parent-watch", "--socket", socket),
  ]);
  const childPid = Number((await parent.waitForLine(/started child (\d+)/))[1]);
  try {
    await waitListening(parent);
    parent.kill("SIGKILL");
    await parent.status; // the parent, and the output the backend shares with it
    assert.match(parent.stderr, /stopping: "?parent gone/);
    assert.equal(await exists(socket), false, "the backend shut down cleanly");
  } finally {
    try {
      Deno.kill(childPid, "SIGKILL"); // only if the test failed and it still runs
    } catch {
      // already gone, as it should be
    }
  }
});

Deno.test("proxy backend replaces a stale socket file but not a live one", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  {
    await using first = spawnProgram(["backend", "--test-methods", "--socket", socket]);
    await waitListening(first);
    first.kill("SIGKILL");
    await first.status;
  }
  assert.equal(await exists(socket), true, "a killed backend leaves its socket file");
  await using second = spawnProgram(["backend", "--test-methods", "--socket", socket]);
  const address = await waitListening(second);
  assert.equal((await client(address, "ping")).stdout, '"pong"\n');

  const third = await runProgram(["backend", "--socket", socket]);
  assert.equal(third.code, 1);
  assert.match(third.stderr, /in use/i);
  assert.equal((await client(address, "ping")).stdout, '"pong"\n', "the live one is untouched");
});

Deno.test("proxy backend exits with code 2 on bad flags", async () => {
  await using dir = await tempDir();
  const socket = dir.join("w.sock");
  const cases: [string, string[], RegExp][] = [
    ["unknown option", ["--bogus"], /unknown option '--bogus'/],
    [
      "both addresses",
      ["--socket", socket, "--listen", "127.0.0.1:0"],
      /either --socket or --listen/,
    ],
    ["no address", [], /give --socket PATH or --listen HOST:PORT/],
    ["bad size", ["--socket", socket, "--max-message-size", "lots"], /expected a size/],
    ["zero size", ["--socket", socket, "--max-message-size", "0"], /expected a size/],
    ["bad listen address", ["--listen", "nowhere"], /Cannot parse address/],
    ["bad port", ["--listen", "127.0.0.1:70000"], /Cannot parse port/],
    ["bad duration", ["--socket", socket, "--drain-timeout", "soon"], /expected a duration/],
  ];
  const results = await Promise.all(
    cases.map(([, args]) => runProgram(["backend", ...args], { env: { PROXY_WORKER_SOCKET: "" } })),
  );
  for (const [i, [name, , pattern]] of cases.entries()) {
    assert.equal(results[i]!.code, 2, `${name}: ${results[i]!.stderr}`);
    assert.match(results[i]!.stderr, pattern, name);
  }
  assert.equal(await exists(socket), false);
});
