/**
 * End-to-end tests of the legacy (original C++ proxy, `CCRPC`) protocol:
 * `proxy serve` with real workers on the port it shares with
 * MessagePack-RPC, `proxy client --legacy`, and `legacy.call` on a backend.
 */

import assert from "node:assert/strict";
import { LegacyClient } from "../lib/client/legacy_client.ts";
import { RpcClient } from "../lib/client/rpc_client.ts";
import {
  encodeLegacyFrame,
  LEGACY_BODY_JSON,
  LEGACY_PROXY_REPLY,
  type LegacyFrame,
  type LegacyHeaderInit,
} from "../lib/protocol/mod.ts";
import { ProxyError } from "../lib/protocol/errors.ts";
import type { ProxyStats } from "../lib/proxy/proxy_server.ts";
import {
  REPO_ROOT,
  runProgram,
  spawnProgram,
  splitHostPort,
  tempDir,
  waitListening,
} from "./helpers/process.ts";

const enc = new TextEncoder();
import { concat, LegacyReplies } from "./helpers/legacy.ts";
const dec = new TextDecoder();

const ALLEN = '{"user_id":"allen"}';
const HANDLED_1000 = "handle 1000 function successful";
const UNKNOWN_BODY = '{"errno": -1 ,"errmsg":"unknow request","result":""}';
const NO_USER_BODY = `{"errno": -3 ,"errmsg":"input param invalid,can't find user id","result":""}`;

function frame(init: Partial<LegacyHeaderInit> & { body?: string }): Uint8Array {
  return encodeLegacyFrame({
    bodyType: init.bodyType ?? LEGACY_BODY_JSON,
    msgType: init.msgType ?? 0,
    flowNo: init.flowNo ?? 1,
    funcNo: init.funcNo ?? 1000,
    errNo: 0,
  }, enc.encode(init.body ?? ALLEN));
}

async function startProxy(...extra: string[]) {
  const proc = spawnProgram(["serve", "--port", "0", "--test-methods", ...extra]);
  const address = await waitListening(proc);
  return { proc, address };
}

function text(f: LegacyFrame | null): string {
  assert.ok(f, "expected a reply, got the end of the stream");
  return dec.decode(f.body);
}

async function pidOf(client: LegacyClient, user: string): Promise<number> {
  const reply = await client.call({ funcNo: 1001, body: JSON.stringify({ user_id: user }) }, {
    timeout: 10_000,
  });
  assert.equal(reply.header.errNo, 0, dec.decode(reply.body));
  return (JSON.parse(dec.decode(reply.body)) as { pid: number }).pid;
}

Deno.test("serve answers a legacy and a MessagePack-RPC client on the same port at once", async () => {
  const { proc, address } = await startProxy("--workers", "2");
  await using _ = proc;
  const legacy = await LegacyClient.connect(address);
  const rpc = await RpcClient.connect(address);
  try {
    const legacyCalls = Array.from(
      { length: 50 },
      () => legacy.call({ funcNo: 1000, body: ALLEN }),
    );
    const rpcCalls = Array.from({ length: 50 }, (_, i) => rpc.call("echo", [{ i }]));
    const [replies, results] = await Promise.all([
      Promise.all(legacyCalls),
      Promise.all(rpcCalls),
    ]);
    assert.deepEqual(
      replies.map((r) => r.header.flowNo),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    for (const reply of replies) {
      assert.equal(reply.header.errNo, 0);
      assert.equal(reply.header.funcNo, 1000);
      assert.equal(dec.decode(reply.body), HANDLED_1000);
    }
    assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => ({ i })));
  } finally {
    legacy.close();
    rpc.close();
  }
});

Deno.test("serve answers func 2000 itself, byte for byte", async () => {
  const { proc, address } = await startProxy("--workers", "1");
  await using _ = proc;
  await using conn = await LegacyReplies.open(address);
  await conn.write(frame({ funcNo: 2000, flowNo: 0x01020304, msgType: 3, body: "{}" }));
  const reply = await conn.next();
  const body = enc.encode(LEGACY_PROXY_REPLY);
  const expected = new Uint8Array(47 + body.length);
  expected.set(enc.encode("CCRPC0"), 0);
  expected.set([3, 0x04, 0x03, 0x02, 0x01, 0xd0, 0x07, 0, 0, 0, 0, 0, 0, body.length, 0, 0, 0], 6);
  expected.set([body.length, 0, 0, 0], 23);
  expected.set(body, 47);
  assert.deepEqual(encodeLegacyFrame(reply!.header, reply!.body), expected);
  assert.equal(
    text(reply),
    '{"errno":0,"errmsg":"successful","result":"handle rpc function successful"}',
  );
});

Deno.test("serve answers two frames sent in one write, in order", async () => {
  const { proc, address } = await startProxy("--workers", "2");
  await using _ = proc;
  await using conn = await LegacyReplies.open(address);
  await conn.write(concat(frame({ flowNo: 10 }), frame({ flowNo: 11, funcNo: 2000 })));
  const first = await conn.next();
  const second = await conn.next();
  assert.deepEqual([first!.header.flowNo, text(first)], [10, HANDLED_1000]);
  assert.deepEqual([second!.header.flowNo, text(second)], [11, LEGACY_PROXY_REPLY]);
});

Deno.test("serve answers a frame split at every byte", async () => {
  const { proc, address } = await startProxy("--workers", "2");
  await using _ = proc;
  const whole = frame({ flowNo: 7 });
  for (let at = 1; at < whole.length; at++) {
    await using conn = await LegacyReplies.open(address);
    await conn.write(whole.subarray(0, at));
    await new Promise((r) => setTimeout(r, 0)); // let the first part go out alone
    await conn.write(whole.subarray(at));
    const reply = await conn.next();
    assert.equal(reply?.header.flowNo, 7, `split at ${at}`);
    assert.equal(text(reply), HANDLED_1000, `split at ${at}`);
  }
  // And one byte per write on a single connection, twice over.
  await using conn = await LegacyReplies.open(address);
  const two = concat(frame({ flowNo: 1 }), frame({ flowNo: 2, funcNo: 2000 }));
  for (let i = 0; i < two.length; i++) await conn.write(two.subarray(i, i + 1));
  assert.equal(text(await conn.next()), HANDLED_1000);
  assert.equal(text(await conn.next()), LEGACY_PROXY_REPLY);
});

Deno.test("serve answers an oversize body_len -1 and closes, without harm to other connections", async () => {
  const { proc, address } = await startProxy("--workers", "1", "--max-message-size", "1k");
  await using _ = proc;
  const bystander = await LegacyClient.connect(address);
  const rpc = await RpcClient.connect(address);
  try {
    await using conn = await LegacyReplies.open(address);
    const header = encodeLegacyFrame({
      bodyType: LEGACY_BODY_JSON,
      msgType: 0,
      flowNo: 4242,
      funcNo: 1000,
      errNo: 0,
    }, new Uint8Array(1025)).subarray(0, 47);
    await conn.write(concat(frame({ flowNo: 1 }), header, new Uint8Array(100)));
    const ok = await conn.next();
    assert.deepEqual([ok!.header.flowNo, text(ok)], [1, HANDLED_1000]);
    const refused = await conn.next();
    assert.equal(refused!.header.flowNo, 4242);
    assert.equal(refused!.header.errNo, -1);
    assert.equal(text(refused), UNKNOWN_BODY);
    assert.equal(await conn.next(), null, "then the connection closes");
    const reply = await bystander.call({ funcNo: 1000, body: ALLEN });
    assert.equal(dec.decode(reply.body), HANDLED_1000);
    assert.equal(await rpc.call("ping"), "pong");
  } finally {
    bystander.close();
    rpc.close();
  }
});

Deno.test("serve answers a bad tag mid-stream -1 and closes", async () => {
  const { proc, address } = await startProxy("--workers", "1");
  await using _ = proc;
  await using conn = await LegacyReplies.open(address);
  await conn.write(concat(frame({ flowNo: 3 }), enc.encode("CCRPX not a frame")));
  assert.equal(text(await conn.next()), HANDLED_1000);
  const bad = await conn.next();
  assert.equal(bad!.header.errNo, -1);
  assert.equal(text(bad), UNKNOWN_BODY);
  assert.equal(await conn.next(), null);
});

Deno.test("serve answers a bad tag on the very first frame -1 and closes", async () => {
  const { proc, address } = await startProxy("--workers", "1");
  await using _ = proc;
  await using conn = await LegacyReplies.open(address);
  await conn.write(enc.encode("CCRPX" + "\0".repeat(42)));
  const bad = await conn.next();
  assert.equal(bad!.header.errNo, -1);
  assert.equal(text(bad), UNKNOWN_BODY);
  assert.equal(await conn.next(), null);
});

Deno.test("serve answers -3 when the body has no user_id and -1 for a function no worker knows", async () => {
  const { proc, address } = await startProxy("--workers", "1");
  await using _ = proc;
  const client = await LegacyClient.connect(address);
  try {
    const noUser = await client.call({ funcNo: 1000, body: '{"name":"allen"}' });
    assert.equal(noUser.header.errNo, -3);
    assert.equal(dec.decode(noUser.body), NO_USER_BODY);
    const notJson = await client.call({ funcNo: 1000, body: "allen" });
    assert.equal(notJson.header.errNo, -3);
    const unknown = await client.call({ funcNo: 4711, body: ALLEN });
    assert.equal(unknown.header.errNo, -1);
    assert.equal(unknown.header.funcNo, 4711);
    assert.equal(dec.decode(unknown.body), UNKNOWN_BODY);
    assert.equal(unknown.header.originLen, unknown.header.bodyLen);
  } finally {
    client.close();
  }
});

// Depends on the `dedicated` pool mode: one worker per user_id.
Deno.test("serve gives two users two different workers and the same user always the same one", async () => {
  const { proc, address } = await startProxy("--pool", "dedicated", "--route-key", "user_id");
  await using _ = proc;
  const a = await LegacyClient.connect(address);
  const b = await LegacyClient.connect(address);
  try {
    const [alice1, bob1] = await Promise.all([pidOf(a, "alice"), pidOf(b, "bob")]);
    const [alice2, bob2, alice3] = await Promise.all([
      pidOf(b, "alice"),
      pidOf(a, "bob"),
      pidOf(a, "alice"),
    ]);
    assert.notEqual(alice1, bob1, "two users, two workers");
    assert.notEqual(alice1, proc.pid);
    assert.deepEqual([alice2, alice3], [alice1, alice1], "alice always reaches her worker");
    assert.equal(bob2, bob1, "bob always reaches his worker");
    // A MessagePack-RPC client keyed by the same user_id reaches the same worker.
    const rpc = await RpcClient.connect(address);
    try {
      const info = await rpc.call("info", [{ user_id: "alice" }]) as { pid: number };
      assert.equal(info.pid, alice1);
    } finally {
      rpc.close();
    }
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("serve answers -1 when a --worker-cmd worker has no legacy.call", async () => {
  const { proc, address } = await startProxy(
    "--workers",
    "1",
    "--worker-cmd",
    `python3 ${REPO_ROOT}/tests/testdata/py_worker.py {socket}`,
  );
  await using _ = proc;
  const client = await LegacyClient.connect(address);
  try {
    const reply = await client.call({ funcNo: 1000, body: ALLEN });
    assert.equal(reply.header.errNo, -1);
    assert.equal(dec.decode(reply.body), UNKNOWN_BODY);
    const own = await client.call({ funcNo: 2000, body: ALLEN });
    assert.equal(dec.decode(own.body), LEGACY_PROXY_REPLY);
  } finally {
    client.close();
  }
});

// A handler module whose legacy.call implements 3000 (echo), 3001 (throws),
// 3002 (answers after 1 s) and nothing else (UNKNOWN_FUNCTION).
async function writeHandlerModule(path: string): Promise<string> {
  await Deno.writeTextFile(
    path,
    `import { ProxyError } from ${JSON.stringify(new URL(`file://${REPO_ROOT}/mod.ts`).href)};
export default {
  "legacy.call"(req: { func_no: number; user_id: string; body: string }) {
    if (req.func_no === 3000) return "3000 for " + req.user_id + ": " + req.body;
    if (req.func_no === 3001) throw new Error("a bug in function 3001");
    if (req.func_no === 3002) return new Promise((r) => setTimeout(() => r("slow done"), 1000));
    throw new ProxyError("UNKNOWN_FUNCTION", "no function " + req.func_no);
  },
};
`,
  );
  return path;
}

Deno.test("serve reaches function numbers a handler module implements with legacy.call", async () => {
  await using dir = await tempDir();
  const module = await writeHandlerModule(dir.join("legacy_handler.ts"));
  const { proc, address } = await startProxy("--workers", "1", "--handler", module);
  await using _ = proc;
  const client = await LegacyClient.connect(address);
  try {
    const reply = await client.call({ funcNo: 3000, body: ALLEN });
    assert.equal(reply.header.errNo, 0);
    assert.equal(dec.decode(reply.body), `3000 for allen: ${ALLEN}`);
    const buggy = await client.call({ funcNo: 3001, body: ALLEN }); // HANDLER_ERROR
    assert.equal(buggy.header.errNo, -2);
    assert.equal(dec.decode(buggy.body), '{"errno": -2 ,"errmsg":"illegal request","result":""}');
    const unknown = await client.call({ funcNo: 1000, body: ALLEN }); // the module replaced 1000
    assert.equal(unknown.header.errNo, -1);
  } finally {
    client.close();
  }
});

Deno.test("the built-in worker answers legacy.call for 1000, 2000 and its pid, UNKNOWN_FUNCTION otherwise", async () => {
  await using dir = await tempDir();
  await using backend = spawnProgram(["backend", "--test-methods", "--socket", dir.join("w.sock")]);
  const address = await waitListening(backend);
  const client = await RpcClient.connect(address);
  try {
    const req = (func_no: number) => [{ func_no, flow_no: 1, user_id: "allen", body: ALLEN }];
    assert.equal(await client.call("legacy.call", req(1000)), HANDLED_1000);
    assert.equal(await client.call("legacy.call", req(2000)), "handle 2000 function successful");
    assert.equal(await client.call("legacy.call", req(1001)), `{"pid":${backend.pid}}`);
    try {
      await client.call("legacy.call", req(5));
      assert.fail("expected UNKNOWN_FUNCTION");
    } catch (err) {
      assert.ok(err instanceof ProxyError);
      assert.equal(err.code, "UNKNOWN_FUNCTION");
    }
  } finally {
    client.close();
  }
});

Deno.test("proxy client --legacy --repeat prints each reply and exits 0, or 1 on error replies", async () => {
  const { proc, address } = await startProxy("--workers", "1");
  await using _ = proc;
  const { hostname, port } = splitHostPort(address);
  const ok = await runProgram(["client", "--legacy", hostname, String(port), "--repeat", "3"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(
    ok.stdout,
    [1, 2, 3].map((n) => `func_no: 1000, flow_no: ${n}, content: ${HANDLED_1000}\n`).join(""),
  );
  assert.match(ok.stderr, /^3 calls \(0 failed\) in /m);

  const proxyFunc = await runProgram([
    "client",
    "--legacy",
    hostname,
    String(port),
    "--func",
    "2000",
    "--body",
    "{}",
    "--repeat",
    "1",
  ]);
  assert.equal(proxyFunc.code, 0, proxyFunc.stderr);
  assert.equal(proxyFunc.stdout, `func_no: 2000, flow_no: 1, content: ${LEGACY_PROXY_REPLY}\n`);

  const bad = await runProgram([
    "client",
    "--legacy",
    hostname,
    String(port),
    "--body",
    '{"user":"x"}',
    "--repeat",
    "2",
  ]);
  assert.equal(bad.code, 1);
  assert.equal(
    bad.stdout,
    [1, 2].map((n) => `func_no: 1000, flow_no: ${n}, content: ${NO_USER_BODY}\n`).join(""),
  );
  assert.match(bad.stderr, /^2 calls \(2 failed\) in /m);
});

Deno.test("proxy client --legacy loops until interrupted, then prints the count", async () => {
  const { proc, address } = await startProxy("--workers", "1");
  await using _ = proc;
  const { hostname, port } = splitHostPort(address);
  await using client = spawnProgram(["client", "--legacy", hostname, String(port)]);
  await client.waitForLine(/flow_no: 5, content: handle 1000 function successful$/, {
    stream: "stdout",
  });
  client.kill("SIGINT");
  const status = await client.waitExit();
  assert.equal(status.code, 0, client.stderr);
  const match = client.stderr.match(/^(\d+) calls \(0 failed\) in /m);
  assert.ok(match, client.stderr);
  assert.ok(Number(match[1]) >= 5);
});

Deno.test("proxy client --legacy exits 3 when nothing listens, 2 on METHOD arguments or --func alone", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const refused = await runProgram(["client", "--legacy", "127.0.0.1", String(port)]);
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /Cannot connect/);
  const usage = await runProgram(["client", "--legacy", "127.0.0.1", String(port), "ping"]);
  assert.equal(usage.code, 2);
  const noLegacy = await runProgram(["client", "127.0.0.1", String(port), "ping", "--func", "3"]);
  assert.equal(noLegacy.code, 2);
  assert.match(noLegacy.stderr, /--func and --body need --legacy/);
});

Deno.test("serve answers -2 to legacy frames that arrive while it drains, after what was in flight", async () => {
  await using dir = await tempDir();
  const module = await writeHandlerModule(dir.join("legacy_handler.ts"));
  const { proc, address } = await startProxy("--workers", "1", "--handler", module);
  await using _ = proc;
  await using conn = await LegacyReplies.open(address);
  await conn.write(frame({ flowNo: 1, funcNo: 3002 }));
  const rpc = await RpcClient.connect(address);
  try {
    // Polls real state (no fixed sleep) until the slow call is at the worker.
    let atWorker = false;
    for (let i = 0; i < 500 && !atWorker; i++) {
      const stats = await rpc.call("proxy.stats") as ProxyStats;
      atWorker = stats.workers.some((w) => w.in_flight > 0);
      if (!atWorker) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(atWorker, "the slow call reached the worker");
  } finally {
    rpc.close();
  }
  proc.kill("SIGTERM");
  await proc.waitForLine(/Proxy stopping/);
  await conn.write(concat(frame({ flowNo: 2 }), frame({ flowNo: 3, funcNo: 2000 })));
  const replies = [await conn.next(), await conn.next(), await conn.next()];
  assert.deepEqual(replies.map((r) => [r!.header.flowNo, r!.header.errNo, text(r)]), [
    [1, 0, "slow done"],
    [2, -2, '{"errno": -2 ,"errmsg":"illegal request","result":""}'],
    [3, -2, '{"errno": -2 ,"errmsg":"illegal request","result":""}'],
  ]);
  assert.equal(await conn.next(), null);
  assert.equal((await proc.waitExit()).code, 0);
});
