/**
 * The pure parts of TLS and token authentication (token files, the constant
 * time check, reloading, the wire token, `--upstream tls:`, the exposure
 * warning, the flags' rules), and the TLS connection layer in-process:
 * closing a silent connection really closes it, bytes sent far ahead come
 * through the pause, and connecting fails with the right code.
 */

import assert from "node:assert/strict";
import { parseTokenFile } from "../lib/auth/token_file.ts";
import { constantTimeEqual, TokenSet } from "../lib/auth/token_set.ts";
import { parseUpstreamSpec } from "../lib/dispatch/upstream_spec.ts";
import { connectWithin } from "../lib/net/address.ts";
import { connectTls, listenTls, readServerCert } from "../lib/net/tls.ts";
import { OptionError } from "../lib/options/option.ts";
import { resolveServeSettings } from "../lib/options/serve_options.ts";
import { RawString, readAuthToken } from "../lib/protocol/mod.ts";
import { exposureWarning } from "../lib/proxy/exposure.ts";
import { makeCerts } from "./helpers/certs.ts";
import { closedPort, tempDir } from "./helpers/process.ts";
import { errorOf, eventually } from "./helpers/wait.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("a token file gives one token a line, without blank lines, # comments, surrounding space or duplicates", () => {
  assert.deepEqual(
    parseTokenFile("# rotated\r\nnew-token\r\n\n   old token  \n#old-old\nnew-token\n"),
    ["new-token", "old token"],
  );
  assert.deepEqual(parseTokenFile("\n# nothing\n  \n"), []);
});

Deno.test("tokens are compared in constant time on their digests: str and bin alike, any length refused", () => {
  assert.equal(constantTimeEqual(bytes("abc"), bytes("abc")), true);
  assert.equal(constantTimeEqual(bytes("abc"), bytes("abd")), false);
  assert.equal(constantTimeEqual(bytes("abc"), bytes("abcd")), false);
  const tokens = new TokenSet(["first", bytes("second")]);
  assert.equal(tokens.size, 2);
  assert.equal(tokens.verify(bytes("first")), true);
  assert.equal(tokens.verify(bytes("second")), true);
  for (const wrong of ["", "firs", "first ", "second\n", "x".repeat(10_000)]) {
    assert.equal(tokens.verify(bytes(wrong)), false, JSON.stringify(wrong));
  }
  assert.throws(() => new TokenSet([]), RangeError);
});

Deno.test("TokenSet.reload takes the file's new tokens, and keeps the old ones when it is empty or gone", async () => {
  await using dir = await tempDir();
  const file = dir.join("tokens");
  await Deno.writeTextFile(file, "old\n");
  const tokens = await TokenSet.load(file);
  await Deno.writeTextFile(file, "new\n");
  assert.equal(await tokens.reload(), true);
  assert.deepEqual([tokens.verify(bytes("new")), tokens.verify(bytes("old"))], [true, false]);
  await Deno.writeTextFile(file, "# emptied by mistake\n");
  assert.equal(await tokens.reload(), false);
  await Deno.remove(file);
  assert.equal(await tokens.reload(), false);
  assert.equal(tokens.verify(bytes("new")), true, "kept");
  const err = await errorOf(TokenSet.load(file));
  assert.ok(err instanceof OptionError);
  assert.match(err.message, new RegExp(`--auth-token-file: cannot read ${file}`));
  assert.equal(await new TokenSet(["no file"]).reload(), false);
});

Deno.test("proxy.auth's token is its only param, a str (even one that is not UTF-8) or a bin", () => {
  assert.deepEqual(readAuthToken(["tok"]), bytes("tok"));
  assert.deepEqual(readAuthToken([bytes("tok")]), bytes("tok"));
  assert.deepEqual(readAuthToken([new RawString(new Uint8Array([0xff]))]), new Uint8Array([0xff]));
  for (const bad of [[], ["a", "b"], [1], [null], [["tok"]], "tok", null]) {
    assert.equal(readAuthToken(bad), null, JSON.stringify(bad));
  }
});

Deno.test("--upstream tls:, dns+tls: and srv+tls: are the TLS variants; tls: takes HOST:PORT only", () => {
  assert.deepEqual(parseUpstreamSpec("tls:10.0.0.1:9000,weight=2"), {
    kind: "static",
    address: { transport: "tcp", hostname: "10.0.0.1", port: 9000 },
    weight: 2,
    text: "tls:10.0.0.1:9000,weight=2",
    tls: true,
  });
  assert.deepEqual(parseUpstreamSpec("dns+tls:backends.svc:9000"), {
    kind: "dns",
    name: "backends.svc",
    port: 9000,
    weight: 1,
    text: "dns+tls:backends.svc:9000",
    tls: true,
  });
  assert.equal(parseUpstreamSpec("srv+tls:_rpc._tcp.backends.svc").tls, true);
  assert.equal(parseUpstreamSpec("tcp:10.0.0.1:9000").tls, undefined);
  for (const bad of ["tls:unix:/run/w.sock", "tls:tcp:h:1", "tls:h", "srv+tls:name"]) {
    assert.throws(() => parseUpstreamSpec(bad), TypeError, bad);
  }
});

Deno.test("beyond loopback, the warning names what is missing and how to add it", () => {
  for (const host of ["127.0.0.1", "localhost", "::1"]) {
    assert.equal(exposureWarning(host, { tls: false, auth: false }), null);
  }
  assert.equal(exposureWarning("0.0.0.0", { tls: true, auth: true }), null);
  assert.match(
    exposureWarning("0.0.0.0", { tls: false, auth: false })!,
    /^INSECURE: listening on 0\.0\.0\.0, .*neither TLS nor authentication.*Fix: --tls-cert FILE --tls-key FILE and --auth-token-file FILE, or listen on loopback/,
  );
  assert.match(
    exposureWarning("10.0.0.5", { tls: true, auth: false })!,
    /without authentication: anyone .*Fix: --auth-token-file FILE,/,
  );
  assert.match(
    exposureWarning("10.0.0.5", { tls: false, auth: true })!,
    /without TLS: tokens and requests travel in clear text.*Fix: --tls-cert FILE --tls-key FILE,/,
  );
  assert.match(
    exposureWarning("10.0.0.5", { tls: true, auth: true, legacyUnauthenticated: true })!,
    /legacy-protocol clients are served without a token.*drop --legacy-unauthenticated/,
  );
});

Deno.test("serve options: --tls-cert and --tls-key both or neither; --upstream-ca needs a TLS upstream", () => {
  assert.throws(() => resolveServeSettings({ tlsCert: "c.pem" }), /--tls-cert: needs --tls-key/);
  assert.throws(() => resolveServeSettings({ tlsKey: "k.pem" }), /--tls-key: needs --tls-cert/);
  const both = resolveServeSettings({ tlsCert: "c.pem", tlsKey: "k.pem" });
  assert.deepEqual([both.tlsCert, both.tlsKey, both.authTimeout], ["c.pem", "k.pem", 10_000]);
  assert.throws(
    () => resolveServeSettings({ workers: 0, upstream: ["tcp:h:1"], upstreamCa: "ca.pem" }),
    /--upstream-ca: no upstream uses TLS/,
  );
  const ok = resolveServeSettings({ workers: 0, upstream: ["tls:h:1"], upstreamCa: "ca.pem" });
  assert.equal(ok.upstreamCa, "ca.pem");
});

Deno.test("the TLS layer: a silent connection closes at once, bytes sent far ahead come through, a half-close is answered", async () => {
  await using dir = await tempDir();
  const certs = await makeCerts(dir.path);
  const caCerts = [await Deno.readTextFile(certs.ca)];
  const listener = await listenTls(
    { hostname: "127.0.0.1", port: 0 },
    await readServerCert(certs.cert, certs.key),
  );
  try {
    // A peer that never starts its handshake: closing our side closes the socket.
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const accepted = await listener.accept();
    accepted.close();
    accepted.close(); // idempotent
    assert.equal(await silent.read(new Uint8Array(16)), null, "the peer sees the end");
    await assert.rejects(accepted.handshake());
    silent.close();

    // 3 MiB sent while the server does not read (it pauses past 1 MiB), then a half-close.
    const client = await connectTls(listener.addr, { caCerts });
    const server = await listener.accept();
    await server.handshake();
    const sent = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    let written = 0;
    const writing = (async () => {
      while (written < sent.length) written += await client.write(sent.subarray(written));
    })();
    // The server reads nothing until the client is well past the 1 MiB pause point.
    await eventually(
      "the client 1.5 MiB ahead",
      () => Promise.resolve(written > 1.5 * 1024 * 1024),
    );
    const got = new Uint8Array(sent.length);
    let n = 0;
    while (n < sent.length) {
      const k = await server.read(got.subarray(n));
      assert.notEqual(k, null, `ended after ${n} bytes`);
      n += k!;
    }
    await writing;
    assert.deepEqual(got, sent);
    await client.closeWrite();
    assert.equal(await server.read(new Uint8Array(16)), null, "the half-close is seen");
    await server.write(bytes("answer"));
    server.close();
    const answer = new Uint8Array(16);
    const k = await client.read(answer);
    assert.equal(new TextDecoder().decode(answer.subarray(0, k!)), "answer");
    assert.equal(await client.read(answer), null, "then a clean end");
    client.close();
  } finally {
    listener.close();
  }
});

Deno.test("connecting with TLS fails as CONNECT_FAILED, TLS_FAILED or TIMEOUT, and a silent server is let go", async () => {
  await using dir = await tempDir();
  const certs = await makeCerts(dir.path);
  const listener = await listenTls(
    { hostname: "127.0.0.1", port: 0 },
    await readServerCert(certs.rogueCert, certs.rogueKey),
  );
  const caCerts = [await Deno.readTextFile(certs.ca)];
  try {
    const untrusted = await errorOf(
      connectWithin(`127.0.0.1:${listener.addr.port}`, { tls: { caCerts } }),
    );
    assert.equal(untrusted.code, "TLS_FAILED");
    assert.match(untrusted.message, /^Cannot connect to 127\.0\.0\.1:\d+: TLS handshake with/);
    (await listener.accept()).close();
  } finally {
    listener.close();
  }
  const refused = await errorOf(
    connectWithin(`127.0.0.1:${closedPort()}`, { tls: { caCerts }, timeout: 2000 }),
  );
  assert.equal(refused.code, "CONNECT_FAILED");
  // A server that accepts and says nothing: the attempt gives up, and its socket closes.
  const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const attempt = errorOf(
      connectWithin(`127.0.0.1:${(mute.addr as Deno.NetAddr).port}`, {
        tls: { caCerts },
        timeout: 200,
      }),
    );
    const conn = await mute.accept();
    assert.equal((await attempt).code, "TIMEOUT");
    const buf = new Uint8Array(4096);
    while ((await conn.read(buf)) !== null) {
      // its ClientHello, then the end
    }
    conn.close();
  } finally {
    mute.close();
  }
});
