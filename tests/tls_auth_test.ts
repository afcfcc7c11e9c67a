/**
 * TLS and token authentication end to end: `proxy serve --tls-cert/--tls-key`
 * and `--auth-token-file` with real processes, certificates made by openssl
 * in a temp dir, a foreign client (Python's ssl + msgpack), token rotation by
 * SIGHUP under load, legacy clients, TLS upstreams (our backend, a Python
 * server, a DNS-discovered one), and the flags' checks.
 */

import assert from "node:assert/strict";
import { RpcClient, type RpcClientOptions } from "../lib/client/rpc_client.ts";
import { LegacyClient } from "../lib/client/legacy_client.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";
import { encodeValue } from "../lib/protocol/mod.ts";
import { makeCerts, type TestCerts } from "./helpers/certs.ts";
import { pythonWith, runPython } from "./helpers/python.ts";
import { RawConnection } from "./helpers/raw_conn.ts";
import {
  type ProgramProcess,
  REPO_ROOT,
  runProgram,
  spawnCommand,
  spawnProgram,
  splitHostPort,
  type TempDir,
  tempDir,
  waitListening,
} from "./helpers/process.ts";
import { errorOf, eventually } from "./helpers/wait.ts";
import { dnsmasq } from "./helpers/dnsmasq.ts";

type Response = [number, number, { code: string; message: string } | null, unknown];

/** A temp dir with certificates and token files; dispose it. */
async function setUp(): Promise<{ dir: TempDir; certs: TestCerts; caCerts: string[] }> {
  const dir = await tempDir();
  const certs = await makeCerts(dir.path);
  return { dir, certs, caCerts: [await Deno.readTextFile(certs.ca)] };
}

/** A proxy with a client that reaches it as `client` says (TLS, token). */
interface SecuredProxy extends AsyncDisposable {
  proc: ProgramProcess;
  address: string;
  client: RpcClient;
  stats(): Promise<ProxyStats>;
}

async function startSecured(args: string[], client: RpcClientOptions): Promise<SecuredProxy> {
  const proc = spawnProgram(["serve", "--port", "0", ...args]);
  try {
    const address = await waitListening(proc);
    const c = await RpcClient.connect(address, client);
    return {
      proc,
      address,
      client: c,
      stats: async () => await c.call("proxy.stats") as ProxyStats,
      async [Symbol.asyncDispose]() {
        c.close();
        await proc[Symbol.asyncDispose]();
      },
    };
  } catch (err) {
    await proc[Symbol.asyncDispose]();
    throw err;
  }
}

/** A backend over TLS with the given certificate. */
async function tlsBackend(
  cert: string,
  key: string,
  listen = "127.0.0.1:0",
): Promise<{ proc: ProgramProcess; address: string }> {
  const proc = spawnProgram(["backend", "--listen", listen, "--tls-cert", cert, "--tls-key", key]);
  return { proc, address: await waitListening(proc) };
}

async function pidOf(client: RpcClient): Promise<number> {
  return ((await client.call("info")) as { pid: number }).pid;
}

Deno.test("serve --tls-cert --tls-key --auth-token-file: Python's ssl + msgpack authenticate and echo through it; proxy client too", async () => {
  const python = await pythonWith("msgpack");
  const { dir, certs, caCerts } = await setUp();
  await using _dir = dir;
  await Deno.writeTextFile(dir.join("tokens"), "# current\ns3cret\n\n  other-token  \n");
  await using p = await startSecured(
    [
      ...["--workers", "1", "--tls-cert", certs.cert, "--tls-key", certs.key],
      ...["--auth-token-file", dir.join("tokens")],
    ],
    { tls: true, caCerts, token: "s3cret" },
  );
  const { hostname, port } = splitHostPort(p.address);
  const ok = JSON.parse(
    await runPython(python, [
      `${REPO_ROOT}/tests/testdata/py_tls_client.py`,
      hostname,
      String(port),
      certs.ca,
      "other-token",
    ]),
  );
  assert.deepEqual(ok, { auth: true, echoed: 9, mismatches: [], closed: false });
  const refused = JSON.parse(
    await runPython(python, [
      `${REPO_ROOT}/tests/testdata/py_tls_client.py`,
      hostname,
      String(port),
      certs.ca,
      "guess",
    ]),
  );
  assert.equal(refused.auth.code, "UNAUTHENTICATED");
  assert.equal(refused.closed, true, "closed after the refusal");
  // The CLI: --ca implies --tls; the first token of the file is sent.
  await Deno.writeTextFile(dir.join("mine"), "# mine\ns3cret\n");
  const cli = await runProgram([
    ...["client", "--ca", certs.ca, "--auth-token-file", dir.join("mine")],
    ...[hostname, String(port), "echo", "over tls"],
  ]);
  assert.deepEqual([cli.code, cli.stdout], [0, '"over tls"\n'], cli.stderr);
  const s = await p.stats();
  assert.equal(s.connections.auth_failures, 1);
  assert.equal(s.connections.tls_failures, 0);
});

Deno.test("a wrong token, or another message first, is answered UNAUTHENTICATED and closed; an authenticated client on the same proxy keeps working", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.join("tokens"), "right\n");
  await using p = await startSecured(
    ["--workers", "1", "--test-methods", "--auth-token-file", dir.join("tokens")],
    { token: "right" },
  );
  // Authenticated and busy while the others are refused.
  const slow = p.client.call("sleep", [300]);
  const before = (await p.stats()).totals.requests;
  {
    await using raw = await RawConnection.open(p.address);
    await raw.send([0, 1, "proxy.auth", ["wrong"]]);
    await raw.send([0, 2, "echo", ["never forwarded"]]);
    const answers = await raw.receiveAll() as Response[];
    assert.equal(answers.length, 1, "one answer, then closed");
    assert.deepEqual([answers[0]![1], answers[0]![2]!.code], [1, "UNAUTHENTICATED"]);
  }
  {
    await using raw = await RawConnection.open(p.address);
    // The whole batch in one write: nothing after the first is served.
    await raw.write(
      new Uint8Array([
        ...encodeValue([0, 7, "echo", ["before auth"]]),
        ...encodeValue([0, 8, "proxy.auth", ["right"]]),
        ...encodeValue([0, 9, "proxy.stats", []]),
      ]),
    );
    const answers = await raw.receiveAll() as Response[];
    assert.equal(answers.length, 1);
    assert.deepEqual([answers[0]![1], answers[0]![2]!.code], [7, "UNAUTHENTICATED"]);
    assert.match(answers[0]![2]!.message, /authenticate first \(proxy\.auth/);
  }
  {
    // A notification first cannot be answered: closed at once.
    await using raw = await RawConnection.open(p.address);
    await raw.send([2, "echo", ["x"]]);
    assert.deepEqual(await raw.receiveAll(), []);
  }
  {
    // A bin token is as good as a str.
    await using raw = await RawConnection.open(p.address);
    await raw.send([0, 1, "proxy.auth", [new TextEncoder().encode("right")]]);
    await raw.send([0, 2, "echo", ["after auth"]]);
    assert.deepEqual(await raw.receive(), [1, 1, null, true]);
    assert.deepEqual(await raw.receive(), [1, 2, null, "after auth"]);
  }
  const err = await errorOf(RpcClient.connect(p.address, { token: "wrong" }));
  assert.equal(err.code, "UNAUTHENTICATED");
  assert.equal(await slow, null, "the authenticated client's request was answered");
  assert.equal(await p.client.call("echo", ["still here"]), "still here");
  const s = await p.stats();
  assert.equal(s.totals.requests, before + 2, "only the authenticated echoes were forwarded");
  assert.equal(s.connections.auth_failures, 4);
});

Deno.test("--auth-timeout closes a connection that does not authenticate in time; without auth, proxy.auth answers true", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.join("tokens"), "right\n");
  await using p = await startSecured(
    ["--workers", "1", "--auth-token-file", dir.join("tokens"), "--auth-timeout", "300ms"],
    { token: "right" },
  );
  {
    await using raw = await RawConnection.open(p.address);
    // Part of a proxy.auth, then nothing (--message-timeout is 30 s).
    await raw.write(encodeValue([0, 1, "proxy.auth", ["right"]]).subarray(0, 5));
    assert.equal(await raw.receive(5000), null, "closed");
  }
  assert.equal((await p.stats()).connections.auth_timeouts, 1);
  assert.equal(await p.client.call("ping"), "pong", "authenticated long before: not timed out");
  // A client given a token works with a proxy that asks for none, so clients
  // can get their tokens before the proxy requires them.
  await using open = await startSecured(["--workers", "1"], { token: "anything" });
  assert.equal(await open.client.call("echo", [1]), 1);
});

Deno.test("before proxy.auth only --auth-max-message-size is read: a big first message is refused, big requests after it are fine", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(dir.join("tokens"), "right\n");
  await using p = await startSecured(
    ["--workers", "1", "--auth-token-file", dir.join("tokens"), "--auth-max-message-size", "1k"],
    { token: "right" },
  );
  {
    await using raw = await RawConnection.open(p.address);
    // Announces 2 MB: refused from its header, before the proxy holds any of it.
    await raw.write(encodeValue([0, 7, "proxy.auth", ["x".repeat(2_000_000)]]).subarray(0, 64));
    const answer = await raw.receive(5000) as Response;
    assert.equal(answer[1], 7);
    assert.equal(answer[2]?.code, "MESSAGE_TOO_LARGE");
    assert.match(answer[2]!.message, /limit of 1024 bytes/);
    assert.equal(await raw.receive(5000), null, "closed");
  }
  // Authenticated, a client sends what --max-message-size allows.
  const big = "y".repeat(1_000_000);
  assert.equal(await p.client.call("echo", [big]), big);
});

Deno.test("token rotation by SIGHUP under load: the new token is accepted, the removed one refused, the load sees no error", async () => {
  await using dir = await tempDir();
  const tokens = dir.join("tokens");
  await Deno.writeTextFile(tokens, "old-token\n");
  await Deno.writeTextFile(dir.join("old"), "old-token\n");
  await using p = await startSecured(
    ["--workers", "2", "--auth-token-file", tokens],
    { token: "old-token" },
  );
  await using load = spawnProgram([
    ...["test", "--target", p.address, "--auth-token-file", dir.join("old")],
    ...["--duration", "3s", "--connections", "4", "--pipeline", "4", "--json"],
  ]);
  await eventually("load running", async () => (await p.stats()).totals.requests > 300);
  // Rotation: the new token first, then the old one gone.
  await Deno.writeTextFile(tokens, "# rotated\nnew-token\n");
  let from = p.proc.stderrLines.length;
  p.proc.kill("SIGHUP");
  await p.proc.waitForLine(/Tokens of --auth-token-file reloaded from .*: 1 accepted/, { from });
  const fresh = await RpcClient.connect(p.address, { token: "new-token" });
  assert.equal(await fresh.call("echo", ["new"]), "new");
  const err = await errorOf(RpcClient.connect(p.address, { token: "old-token" }));
  assert.equal(err.code, "UNAUTHENTICATED");
  // A file emptied by mistake changes nothing: the tokens in use stay.
  await Deno.writeTextFile(tokens, "# nothing\n");
  from = p.proc.stderrLines.length;
  p.proc.kill("SIGHUP");
  const line = await p.proc.waitForLine(/Cannot reload the tokens of --auth-token-file.*/, {
    from,
  });
  assert.match(line[0], /keeping the 1 in use.*holds no token/);
  const again = await RpcClient.connect(p.address, { token: "new-token" });
  assert.equal(await again.call("echo", ["kept"]), "kept");
  const status = await load.waitExit(30_000);
  const report = JSON.parse(load.stdout) as {
    requests: number;
    unanswered: number;
    errors: Record<string, number>;
  };
  assert.deepEqual([report.unanswered, report.errors], [0, {}], load.stdout);
  assert.ok(report.requests > 300);
  assert.equal(status.code, 0, load.stderr);
  fresh.close();
  again.close();
});

Deno.test("legacy clients are refused when auth is on, served with --legacy-unauthenticated, and speak it over TLS", async () => {
  const { dir, certs, caCerts } = await setUp();
  await using _dir = dir;
  await Deno.writeTextFile(dir.join("tokens"), "right\n");
  {
    await using p = await startSecured(
      ["--workers", "1", "--auth-token-file", dir.join("tokens")],
      { token: "right" },
    );
    const legacy = await LegacyClient.connect(p.address);
    await assert.rejects(legacy.call({ funcNo: 2000, body: "{}" }, { timeout: 5000 }));
    legacy.close();
    assert.equal((await p.stats()).connections.legacy_refused, 1);
  }
  await using p = await startSecured(
    [
      ...["--workers", "1", "--auth-token-file", dir.join("tokens"), "--legacy-unauthenticated"],
      ...["--tls-cert", certs.cert, "--tls-key", certs.key],
    ],
    { tls: true, caCerts, token: "right" },
  );
  const legacy = await LegacyClient.connect(p.address, { tls: true, caCerts });
  const reply = await legacy.call({ funcNo: 1000, body: '{"user_id":"allen"}' }, { timeout: 5000 });
  assert.equal(reply.header.errNo, 0);
  assert.equal(new TextDecoder().decode(reply.body), "handle 1000 function successful");
  legacy.close();
  assert.equal((await p.stats()).connections.legacy_refused, 0);
});

Deno.test("a client that fails the TLS handshake or never makes one affects nobody else", async () => {
  const { dir, certs, caCerts } = await setUp();
  await using _dir = dir;
  await using p = await startSecured(
    [
      ...["--workers", "1", "--tls-cert", certs.cert, "--tls-key", certs.key],
      ...["--first-byte-timeout", "500ms"],
    ],
    { tls: true, caCerts },
  );
  const silent = await RawConnection.open(p.address); // no handshake at all
  try {
    {
      // Plain MessagePack at a TLS port.
      await using plain = await RawConnection.open(p.address);
      await plain.send([0, 1, "echo", ["x"]]);
      // A TLS alert (its bytes read as MessagePack are no answer), then closed.
      const got = await plain.receiveAll(5000);
      assert.ok(!got.some((v) => Array.isArray(v)), JSON.stringify(got));
    }
    // A client that does not trust the proxy's CA gives up itself.
    const err = await errorOf(RpcClient.connect(p.address, { tls: true }));
    assert.equal(err.code, "TLS_FAILED");
    assert.match(err.message, /unable to verify the first certificate/);
    assert.equal(await p.client.call("echo", ["meanwhile"]), "meanwhile");
    assert.equal(
      await silent.receive(5000),
      null,
      "the silent one closed after --first-byte-timeout",
    );
    await eventually("three failed handshakes counted", async () => {
      const s = await p.stats();
      return s.connections.tls_failures === 3 && s.connections.open === 1;
    });
    const other = await RpcClient.connect(p.address, { tls: true, caCerts });
    assert.equal(await other.call("echo", ["after"]), "after");
    other.close();
  } finally {
    silent.close();
  }
});

Deno.test("connections closed before their TLS handshake free their place at once, not after --first-byte-timeout", async () => {
  const { dir, certs, caCerts } = await setUp();
  await using _dir = dir;
  await using p = await startSecured(
    [
      ...["--workers", "1", "--tls-cert", certs.cert, "--tls-key", certs.key],
      ...["--first-byte-timeout", "60s", "--max-connections", "30"],
    ],
    { tls: true, caCerts },
  );
  // Connect and leave, again and again: no place may stay taken.
  for (let i = 0; i < 40; i++) {
    const c = await Deno.connect(splitHostPort(p.address));
    c.close();
  }
  await eventually("every place back", async () => {
    const s = await p.stats();
    // (One that came before the proxy saw the last close may have been refused.)
    return s.connections.open === 1 &&
      s.connections.tls_failures + s.connections.refused === 40;
  }, 5000);
  const other = await RpcClient.connect(p.address, { tls: true, caCerts });
  assert.equal(await other.call("echo", ["still room"]), "still room");
  other.close();
});

Deno.test("tls: upstreams with --upstream-ca: used, checked and reconnected over TLS; one signed by another CA is not used and logged", async () => {
  const { dir, certs } = await setUp();
  await using _dir = dir;
  const good = await tlsBackend(certs.cert, certs.key);
  const rogue = await tlsBackend(certs.rogueCert, certs.rogueKey);
  await using _rogue = rogue.proc;
  let goodProc = good.proc;
  try {
    await using p = await startSecured([
      ...[
        "--workers",
        "0",
        "--upstream",
        `tls:${good.address}`,
        "--upstream",
        `tls:${rogue.address}`,
      ],
      ...["--upstream-ca", certs.ca, "--health-interval", "100ms", "--health-check", "connect"],
    ], {});
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) pids.add(await pidOf(p.client));
    assert.deepEqual([...pids], [good.proc.pid], "only the upstream the CA signed");
    await p.proc.waitForLine(
      new RegExp(
        `Upstream tls:${rogue.address}: .*TLS handshake .*failed: unable to verify the first certificate`,
      ),
    );
    // Health checks (connect: a full handshake each, every 100 ms): three
    // in a row fail for the rogue one, while the good one stays healthy.
    await p.proc.waitForLine(new RegExp(`Upstream tls:${rogue.address} is unhealthy`));
    assert.ok(!p.proc.stderr.includes(`tls:${good.address} is unhealthy`), p.proc.stderr);
    const states = (await p.stats()).upstreams.map((u) => [u.address, u.state]).sort();
    assert.deepEqual(
      states,
      [[`tls:${good.address}`, "healthy"], [`tls:${rogue.address}`, "connecting"]].sort(),
    );
    // Killed and back on the same port: reconnected over TLS.
    goodProc.kill("SIGKILL");
    await goodProc.waitExit();
    goodProc = (await tlsBackend(certs.cert, certs.key, good.address)).proc;
    await eventually("served by the new process", async () => {
      try {
        return await pidOf(p.client) === goodProc.pid;
      } catch {
        return false; // NO_UPSTREAMS or UPSTREAM_FAILED while it was down
      }
    }, 15_000);
  } finally {
    await goodProc[Symbol.asyncDispose]();
  }
  // Alone, the rogue one makes requests fail at once, with the reason.
  await using alone = await startSecured(
    ["--workers", "0", "--upstream", `tls:${rogue.address}`, "--upstream-ca", certs.ca],
    {},
  );
  const started = performance.now();
  const err = await errorOf(alone.client.call("echo", [1], { timeout: 5000 }));
  assert.equal(err.code, "NO_UPSTREAMS");
  assert.match(err.message, /TLS handshake .*failed: unable to verify the first certificate/);
  assert.ok(performance.now() - started < 2000, "not held until --queue-timeout");
});

Deno.test("a foreign TLS server (Python's ssl + msgpack) is a tls: upstream; dns+tls: checks the name looked up", async () => {
  const { dir, certs } = await setUp();
  await using _dir = dir;
  const python = await pythonWith("msgpack");
  await using server = spawnCommand(python, [
    `${REPO_ROOT}/tests/testdata/py_tls_echo_server.py`,
    certs.cert,
    certs.key,
  ]);
  const address = await waitListening(server);
  {
    await using p = await startSecured(
      ["--workers", "0", "--upstream", `tls:${address}`, "--upstream-ca", certs.ca],
      {},
    );
    const value = { nested: [1, "two", new Uint8Array([3])] };
    assert.deepEqual(await p.client.call("echo", [value]), value);
    assert.equal((await p.stats()).upstreams[0]!.address, `tls:${address}`);
  }
  // Through DNS: backend.test is in the certificate, other.test is not.
  const dns = await dnsmasq(dir.path, "127.0.0.1 backend.test\n127.0.0.1 other.test\n");
  await using _dns = dns;
  const { port } = splitHostPort(address);
  {
    await using p = await startSecured([
      ...["--workers", "0", "--upstream", `dns+tls:backend.test:${port}`],
      ...["--dns-server", dns.server, "--upstream-ca", certs.ca],
    ], {});
    assert.equal(await p.client.call("echo", ["by name"]), "by name");
  }
  await using wrong = await startSecured([
    ...["--workers", "0", "--upstream", `dns+tls:other.test:${port}`],
    ...["--dns-server", dns.server, "--upstream-ca", certs.ca],
  ], {});
  const err = await errorOf(wrong.client.call("echo", ["x"], { timeout: 5000 }));
  assert.equal(err.code, "NO_UPSTREAMS");
  assert.match(err.message, /TLS handshake with other\.test failed: .*not in the cert's altnames/);
});

Deno.test("TLS and auth flags are checked: both or neither, files named when unusable, exit code 2", async () => {
  const { dir, certs } = await setUp();
  await using _dir = dir;
  await Deno.writeTextFile(dir.join("empty"), "# no token yet\n\n");
  const serve = (...args: string[]) => runProgram(["serve", "--port", "0", ...args]);
  const cases: [Promise<{ code: number; stderr: string }>, RegExp][] = [
    [serve("--tls-cert", certs.cert), /--tls-cert: needs --tls-key too/],
    [serve("--tls-key", certs.key), /--tls-key: needs --tls-cert too/],
    [
      serve("--tls-cert", dir.join("nope.pem"), "--tls-key", certs.key),
      new RegExp(`--tls-cert: cannot read ${dir.join("nope.pem")}`),
    ],
    [
      serve("--tls-cert", certs.key, "--tls-key", certs.key),
      /--tls-cert: .*server\.key holds no PEM CERTIFICATE block/,
    ],
    [
      serve("--tls-cert", certs.cert, "--tls-key", certs.rogueKey),
      /--tls-key: .*rogue\.key is not the private key of .*server\.pem/,
    ],
    [serve("--auth-token-file", dir.join("empty")), /--auth-token-file: .*empty holds no token/],
    [
      serve("--workers", "0", "--upstream", "tcp:127.0.0.1:9", "--upstream-ca", certs.ca),
      /--upstream-ca: no upstream uses TLS/,
    ],
    [
      runProgram(["backend", "--socket", dir.join("w.sock"), "--tls-cert", certs.cert]),
      /--tls-cert: needs --tls-key too/,
    ],
    [
      runProgram([
        ...["backend", "--socket", dir.join("w.sock")],
        ...["--tls-cert", certs.cert, "--tls-key", certs.key],
      ]),
      /TLS needs a TCP address/,
    ],
    [
      runProgram(["client", "--legacy", "--auth-token-file", certs.ca, "127.0.0.1", "1"]),
      /--legacy cannot authenticate/,
    ],
    [runProgram(["test", "--tls", "--duration", "1s"]), /are for a --target/],
    [
      runProgram(["client", "--auth-token-file", dir.join("empty"), "127.0.0.1", "1", "ping"]),
      /--auth-token-file: .*holds no token/,
    ],
  ];
  for (const [run, message] of cases) {
    const { code, stderr } = await run;
    assert.equal(code, 2, stderr);
    assert.match(stderr, message);
  }
});

Deno.test("listening beyond loopback without TLS and auth logs one loud warning naming what is missing", async () => {
  await using p = spawnProgram(["serve", "--host", "0.0.0.0", "--port", "0", "--workers", "1"]);
  await waitListening(p);
  const warnings = p.stderrLines.filter((l) => /INSECURE/.test(l));
  assert.equal(warnings.length, 1, p.stderr);
  assert.match(
    warnings[0]!,
    /WRN.*INSECURE: listening on 0\.0\.0\.0, reachable from other machines, with neither TLS nor authentication.*Fix: --tls-cert FILE --tls-key FILE and --auth-token-file FILE/,
  );
});
