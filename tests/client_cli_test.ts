import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import {
  closedPort,
  programArgs,
  runProgram,
  spawnProgram,
  splitHostPort,
  tempDir,
  waitListening,
} from "./helpers/process.ts";

const SUMMARY = /^(\d+) calls \((\d+) failed\) in \d+\.\d{3} s: \d+ calls\/s$/m;

Deno.test("proxy client reads one call per line of stdin and prints each result", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  const script = [
    "ping",
    'echo {"a": [1, 2], "b": "with spaces"}',
    "",
    '   echo "two words"   ',
    "echo plain",
    "echo 1 ignored",
  ].join("\n") + "\n";
  const result = await runProgram(["client", address], { stdin: script });
  assert.deepEqual(result, {
    code: 0,
    stdout: ['"pong"', '{"a":[1,2],"b":"with spaces"}', '"two words"', '"plain"', "1"].join("\n") +
      "\n",
    stderr: "",
  });
});

Deno.test("proxy client in script mode reports failed lines, goes on, and exits 1", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  const script = 'fail first\necho "unterminated\nnope\necho last'; // no final newline
  const result = await runProgram(["client", address], { stdin: script });
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '"last"\n');
  assert.deepEqual(result.stderr.trimEnd().split("\n"), [
    "HANDLER_ERROR: first",
    "Cannot parse line: unterminated string",
    "METHOD_NOT_FOUND: Cannot call nope: no such method",
  ]);
});

Deno.test("proxy client in script mode exits 3 when the connection drops", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  const result = await runProgram(["client", address], { stdin: "ping\ncrash\nping\n" });
  assert.equal(result.code, 3);
  assert.equal(result.stdout, '"pong"\n');
  assert.match(result.stderr, /^proxy client: Cannot get answer: connection closed$/m);
});

Deno.test("proxy client with an empty stdin makes no call and exits 0", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const result = await runProgram(["client", await waitListening(backend)], { stdin: "" });
  assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
});

Deno.test("proxy client --repeat N calls N times and prints the summary on stderr", async () => {
  await using backend = spawnProgram(["backend", "--test-methods", "--listen", "127.0.0.1:0"]);
  const { hostname, port } = splitHostPort(await waitListening(backend));
  const [loud, quiet, failing] = await Promise.all([
    runProgram(["client", hostname, String(port), "echo", "hi", "--repeat", "25"]),
    runProgram(["client", "--repeat", "40", "-q", hostname, String(port), "ping"]),
    runProgram(["client", hostname, String(port), "fail", "bad", "--repeat", "3"]),
  ]);

  assert.equal(loud.code, 0);
  assert.deepEqual(loud.stdout.trimEnd().split("\n"), Array(25).fill('"hi"'));
  assert.deepEqual(loud.stderr.match(SUMMARY)?.slice(1), ["25", "0"]);

  assert.equal(quiet.code, 0);
  assert.equal(quiet.stdout, "");
  assert.deepEqual(quiet.stderr.match(SUMMARY)?.slice(1), ["40", "0"]);

  assert.equal(failing.code, 1);
  assert.equal(failing.stdout, "");
  assert.deepEqual(failing.stderr.match(SUMMARY)?.slice(1), ["3", "3"]);
  assert.match(failing.stderr, /^first error: HANDLER_ERROR: bad$/m);
});

Deno.test("proxy client --loop calls until SIGINT, then prints the summary and exits 0", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  await using loop = spawnProgram(["client", address, "ping", "--loop"]);
  await loop.waitForLine(/^"pong"$/, { stream: "stdout", from: 2 }); // a few calls made
  loop.kill("SIGINT");
  assert.equal((await loop.waitExit()).code, 0);
  const match = loop.stderr.match(SUMMARY);
  assert.ok(match, loop.stderr);
  assert.equal(match[2], "0");
  assert.ok(Number(match[1]) >= 3);
  assert.equal(Number(match[1]), loop.stdoutLines.length, "one result line per call");
});

Deno.test("proxy client exits 3 with a clear message when the connection is refused", async () => {
  const port = closedPort();
  await using dir = await tempDir();
  const [tcp, unix] = await Promise.all([
    runProgram(["client", "127.0.0.1", String(port), "ping"]),
    runProgram(["client", `unix:${dir.join("missing.sock")}`, "ping"]),
  ]);
  assert.equal(tcp.code, 3);
  assert.equal(tcp.stdout, "");
  assert.match(
    tcp.stderr,
    new RegExp(`^proxy client: Cannot connect to 127\\.0\\.0\\.1:${port}: .*refused`, "i"),
  );
  assert.equal(unix.code, 3);
  assert.match(unix.stderr, /^proxy client: Cannot connect to .*missing\.sock: /);
});

Deno.test("proxy client exits 4 when --timeout passes without an answer", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  const started = performance.now();
  const result = await runProgram(["client", "--timeout", "200ms", address, "sleep", "5000"]);
  assert.equal(result.code, 4);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^proxy client: Cannot call sleep: no answer in 200 ms$/m);
  assert.ok(performance.now() - started < 4000, "gave up long before the sleep ended");
  // A call that answers in time is not affected.
  assert.equal((await runProgram(["client", "--timeout", "5s", address, "sleep", "10"])).code, 0);
});

Deno.test("proxy client exits 2 on usage errors", async () => {
  const cases: [string, string[], RegExp][] = [
    ["missing PORT", ["client", "127.0.0.1"], /missing PORT after HOST/],
    ["bad PORT", ["client", "127.0.0.1", "http", "ping"], /Cannot parse port "http"/],
    ["no target", ["client"], /missing required argument/],
    [
      "--repeat without METHOD",
      ["client", "unix:/nonexistent.sock", "--repeat", "2"],
      /need a METHOD/,
    ],
    [
      "--repeat 0",
      ["client", "unix:/nonexistent.sock", "ping", "--repeat", "0"],
      /expected an integer/,
    ],
    [
      "bad --timeout",
      ["client", "--timeout", "soon", "unix:/x.sock", "ping"],
      /expected a duration/,
    ],
    ["unknown option", ["client", "--frobnicate", "unix:/x.sock"], /unknown option/],
  ];
  const results = await Promise.all(cases.map(([, args]) => runProgram(args)));
  for (const [i, [name, , pattern]] of cases.entries()) {
    assert.equal(results[i]!.code, 2, `${name}: ${results[i]!.stderr}`);
    assert.match(results[i]!.stderr, pattern, name);
    assert.equal(results[i]!.stdout, "", name);
  }
});

Deno.test("proxy client --help and proxy --version exit 0", async () => {
  const [help, version, short, topHelp] = await Promise.all([
    runProgram(["client", "--help"]),
    runProgram(["--version"]),
    runProgram(["-V"]),
    runProgram(["--help"]),
  ]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: proxy client /);
  assert.match(help.stdout, /Exit codes: 0 result, 1 error answer, 2 usage, 3 .*, 4 timeout/);
  assert.deepEqual(version, { code: 0, stdout: `${denoJson.version}\n`, stderr: "" });
  assert.deepEqual(short, version);
  assert.equal(topHelp.code, 0);
  assert.match(topHelp.stdout, /backend/);
  assert.match(topHelp.stdout, /client/);
});

Deno.test("proxy client on a terminal prompts, calls each line and recalls history with the Up arrow", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  // `script` gives the client a pseudo-terminal, as a person's shell would.
  const command = [Deno.execPath(), ...programArgs("client", address)].map((a) => `'${a}'`).join(
    " ",
  );
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let screen = "";
  // Results are the lines that are exactly `"hi there"` (the typed line is echoed too).
  const results = () => screen.split(/\r?\n/).filter((l) => l === '"hi there"').length;
  const waitFor = async (what: RegExp | (() => boolean)) => {
    const deadline = performance.now() + 10_000;
    while (!(typeof what === "function" ? what() : what.test(screen))) {
      if (performance.now() > deadline) throw new Error(`No ${what} on the terminal:\n${screen}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`Terminal closed before ${what}:\n${screen}`);
      screen += value;
    }
  };
  const type = (text: string) => writer.write(new TextEncoder().encode(text));
  try {
    await waitFor(/proxy> /);
    await type('echo "hi there"\r');
    await waitFor(() => results() === 1 && screen.endsWith("proxy> \x1b[8G"));
    await type("\x1b[A\r"); // Up arrow, Enter: the same call again
    await waitFor(() => results() === 2 && screen.endsWith("proxy> \x1b[8G"));
    await type("nope\r");
    await waitFor(/METHOD_NOT_FOUND/);
    await type("\x04"); // Ctrl-D ends the session
    const status = await child.status;
    assert.equal(status.code, 1, "an error answer during the session gives exit code 1");
  } finally {
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
  }
});
