/**
 * Unit tests of the legacy session (in-process sockets, a fake pool) and of
 * the built-in worker's legacy functions.
 */

import assert from "node:assert/strict";
import {
  encodeError,
  encodeLegacyFrame,
  encodeResult,
  ErrorCode,
  LEGACY_BODY_BINARY,
  LEGACY_BODY_JSON,
  LEGACY_PROXY_REPLY,
  type LegacyFrame,
  type LegacyHeaderInit,
  type WireError,
} from "../lib/protocol/mod.ts";
import type { Requester } from "../lib/dispatch/call.ts";
import {
  legacyErrorFor,
  type LegacyPool,
  LegacySession,
  type LegacySessionOptions,
  userIdOf,
} from "../lib/proxy/legacy_session.ts";
import {
  builtinLegacyFunctions,
  LEGACY_CALL_METHOD,
  LEGACY_FUNC_PID,
  type LegacyCallRequest,
  legacyMethods,
  UNKNOWN_FUNCTION,
} from "../lib/backend/legacy_methods.ts";
import { decodeMessage } from "../lib/protocol/message.ts";
import { ProxyError } from "../lib/protocol/errors.ts";

import { concat, hex, LegacyReplies } from "./helpers/legacy.ts";
const enc = new TextEncoder();
const dec = new TextDecoder();

function frame(init: Partial<LegacyHeaderInit> & { body?: string | Uint8Array }): Uint8Array {
  const body = typeof init.body === "string" ? enc.encode(init.body) : init.body ?? enc.encode("");
  return encodeLegacyFrame({
    bodyType: init.bodyType ?? LEGACY_BODY_JSON,
    msgType: init.msgType ?? 0,
    flowNo: init.flowNo ?? 1,
    funcNo: init.funcNo ?? 1000,
    errNo: 0,
  }, body);
}

const ALLEN = '{"user_id":"allen"}';

interface Submitted {
  requester: Requester;
  msgid: number;
  method: string;
  request: LegacyCallRequest;
  key: string | undefined;
}

// A pool that records requests; the test answers them in any order.
class FakePool implements LegacyPool {
  readonly calls: Submitted[] = [];
  forgotten = 0;
  #waiters: { n: number; resolve: () => void }[] = [];

  submit(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    _tail: number,
    key?: string,
  ): void {
    const msg = decodeMessage(frame);
    assert.equal(msg.type, 0);
    const params = (msg as { params: unknown[] }).params;
    this.calls.push({ requester, msgid, method, request: params[0] as LegacyCallRequest, key });
    this.#waiters = this.#waiters.filter((w) => {
      if (this.calls.length < w.n) return true;
      w.resolve();
      return false;
    });
  }

  forget(_requester: Requester): void {
    this.forgotten++;
  }

  /** Resolves once `n` requests were submitted. */
  waitFor(n: number): Promise<void> {
    if (this.calls.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  /** Answers call `i` with a result, as a worker would (its own msgid in the frame). */
  answer(i: number, result: unknown): void {
    const call = this.calls[i]!;
    const workerFrame = encodeResult(900 + i, result);
    call.requester.deliver(call.msgid, workerFrame, 0);
  }

  /** Answers call `i` with an error response from the worker. */
  answerError(i: number, error: WireError): void {
    const call = this.calls[i]!;
    call.requester.deliver(call.msgid, encodeError(900 + i, error), 0);
  }

  /** Fails call `i` as the pool itself does (worker exited, queue full, ...). */
  fail(i: number, error: WireError): void {
    const call = this.calls[i]!;
    call.requester.fail(call.msgid, error);
  }
}

async function open(pool: LegacyPool, options: Partial<LegacySessionOptions> = {}) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await listener.accept();
  listener.close();
  const session = new LegacySession(server, { pool, ...options });
  const running = session.run();
  const write = async (bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) off += await client.write(bytes.subarray(off));
  };
  return {
    client,
    session,
    write,
    replies: new LegacyReplies(client),
    async [Symbol.asyncDispose]() {
      try {
        client.close();
      } catch {
        // closed by the test
      }
      session.close();
      await running;
    },
  };
}

function text(f: LegacyFrame | null): string {
  assert.ok(f, "expected a reply, got the end of the stream");
  return dec.decode(f.body);
}

function errorBody(n: number, msg: string): string {
  return `{"errno": ${n} ,"errmsg":"${msg}","result":""}`;
}

// Yields to the event loop a few times, so a session that would wrongly go
// on reading has had every chance to do so (no fixed sleep).
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

Deno.test("LegacySession answers func 2000 itself, byte for byte, without the pool", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(frame({ funcNo: 2000, flowNo: 0x0102, msgType: 2, body: "{}" }));
  const reply = await s.replies.next();
  const body = enc.encode(LEGACY_PROXY_REPLY);
  assert.deepEqual(
    encodeLegacyFrame(reply!.header, reply!.body),
    concat(
      hex(
        "43 43 52 50 43 30 02" + // tag, body_type '0', msg_type 2 (echoed)
          "02 01 00 00" + // flow_no 0x0102
          "d0 07 00 00" + // func_no 2000
          "00 00 00 00" + // err_no 0
          "4b 00 00 00" + // body_len 75
          "4b 00 00 00" + // origin_len 75
          "00".repeat(20),
      ),
      body,
    ),
  );
  assert.equal(pool.calls.length, 0);
});

Deno.test("LegacySession forwards func 1000 as legacy.call keyed by user_id and echoes the header", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(frame({ funcNo: 1000, flowNo: -7, msgType: 1, body: ALLEN }));
  await pool.waitFor(1);
  const call = pool.calls[0]!;
  assert.equal(call.method, LEGACY_CALL_METHOD);
  assert.equal(call.key, "allen");
  assert.deepEqual(call.request, { func_no: 1000, flow_no: -7, user_id: "allen", body: ALLEN });
  pool.answer(0, "handle 1000 function successful");
  const reply = await s.replies.next();
  assert.equal(text(reply), "handle 1000 function successful");
  assert.deepEqual(reply!.header, {
    bodyType: LEGACY_BODY_JSON,
    msgType: 1,
    flowNo: -7,
    funcNo: 1000,
    errNo: 0,
    bodyLen: 31,
    originLen: 31,
  });
});

Deno.test("LegacySession carries a binary body as bin and a bin result as the reply body", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  const body = enc.encode('{"user_id":"bin"}');
  await s.write(frame({ bodyType: LEGACY_BODY_BINARY, funcNo: 77, body }));
  await pool.waitFor(1);
  const request = pool.calls[0]!.request;
  assert.ok(request.body instanceof Uint8Array);
  assert.deepEqual(new Uint8Array(request.body), body);
  pool.answer(0, new Uint8Array([0, 1, 2, 255]));
  const reply = await s.replies.next();
  assert.deepEqual(reply!.body, new Uint8Array([0, 1, 2, 255]));
  assert.equal(reply!.header.bodyType, LEGACY_BODY_BINARY);
});

Deno.test("LegacySession sends a result that is neither text nor bytes as JSON", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(concat(frame({ flowNo: 1, body: ALLEN }), frame({ flowNo: 2, body: ALLEN })));
  await pool.waitFor(2);
  pool.answer(0, { pid: 42 });
  pool.answer(1, null);
  assert.equal(text(await s.replies.next()), '{"pid":42}');
  assert.equal(text(await s.replies.next()), "");
});

Deno.test("LegacySession answers pipelined frames in request order whatever order workers answer in", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  const users = ["a", "b", "c", "d", "e"];
  await s.write(
    concat(...users.map((u, i) => frame({ flowNo: i + 1, body: `{"user_id":"${u}"}` }))),
  );
  await pool.waitFor(5);
  for (const i of [4, 2, 3, 0, 1]) pool.answer(i, `reply ${i + 1}`);
  for (let i = 1; i <= 5; i++) {
    const reply = await s.replies.next();
    assert.equal(reply!.header.flowNo, i);
    assert.equal(text(reply), `reply ${i}`);
  }
});

Deno.test("LegacySession holds back a reply until the earlier ones are answered", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(concat(frame({ flowNo: 1, body: ALLEN }), frame({ flowNo: 2, funcNo: 2000 })));
  await pool.waitFor(1);
  await turns();
  assert.equal(s.session.inFlight, 2, "the proxy's own reply waits for the first");
  assert.equal(s.session.pendingBytes, 0);
  pool.answer(0, "first");
  assert.equal(text(await s.replies.next()), "first");
  assert.equal(text(await s.replies.next()), LEGACY_PROXY_REPLY);
});

Deno.test("LegacySession maps worker and pool errors to -1 and -2", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  const cases: [string, "answerError" | "fail", number, string][] = [
    [UNKNOWN_FUNCTION, "answerError", -1, "unknow request"],
    [ErrorCode.METHOD_NOT_FOUND, "answerError", -1, "unknow request"],
    [ErrorCode.HANDLER_ERROR, "answerError", -2, "illegal request"],
    [ErrorCode.WORKER_EXITED, "fail", -2, "illegal request"],
    [ErrorCode.NO_WORKERS, "fail", -2, "illegal request"],
    [ErrorCode.QUEUE_FULL, "fail", -2, "illegal request"],
    [ErrorCode.QUEUE_TIMEOUT, "fail", -2, "illegal request"],
    [ErrorCode.TIMEOUT, "fail", -2, "illegal request"],
    [ErrorCode.SHUTTING_DOWN, "fail", -2, "illegal request"],
  ];
  await s.write(
    concat(...cases.map((_, i) => frame({ flowNo: i, funcNo: 3000 + i, body: ALLEN }))),
  );
  await pool.waitFor(cases.length);
  cases.forEach(([code, how], i) => pool[how](i, { code, message: "boom" }));
  for (const [i, [, , errNo, msg]] of cases.entries()) {
    const reply = await s.replies.next();
    assert.equal(reply!.header.flowNo, i);
    assert.equal(reply!.header.funcNo, 3000 + i);
    assert.equal(reply!.header.errNo, errNo);
    assert.equal(text(reply), errorBody(errNo, msg));
    assert.equal(reply!.header.originLen, reply!.header.bodyLen);
  }
});

Deno.test("LegacySession answers -3 when the body has no user_id, without the pool", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  const bodies = ["{}", "not json", '{"user_id":7}', '{"user_id":""}', '["user_id"]', ""];
  await s.write(concat(...bodies.map((body, i) => frame({ flowNo: i, body }))));
  for (let i = 0; i < bodies.length; i++) {
    const reply = await s.replies.next();
    assert.equal(reply!.header.flowNo, i);
    assert.equal(reply!.header.errNo, -3);
    assert.equal(text(reply), errorBody(-3, "input param invalid,can't find user id"));
  }
  assert.equal(pool.calls.length, 0);
});

Deno.test("LegacySession answers an oversize body_len -1 with its flow_no after what is owed, then closes", async () => {
  const pool = new FakePool();
  await using s = await open(pool, { maxMessageSize: 200 });
  const oversize = frame({ flowNo: 99, funcNo: 1000, body: "x".repeat(201) }).subarray(0, 47);
  await s.write(concat(frame({ flowNo: 1, body: ALLEN }), oversize));
  await pool.waitFor(1);
  pool.answer(0, "ok");
  const replies = await s.replies.all();
  assert.deepEqual(replies.map((r) => [r.header.flowNo, r.header.errNo, dec.decode(r.body)]), [
    [1, 0, "ok"],
    [99, -1, errorBody(-1, "unknow request")],
  ]);
  await s.session.done;
  assert.equal(pool.forgotten, 1);
});

Deno.test("LegacySession answers -1 to a body whose call would exceed the limit, and goes on", async () => {
  const pool = new FakePool();
  await using s = await open(pool, { maxMessageSize: 64 });
  const body = `{"user_id":"allen","pad":"${"x".repeat(64 - 28)}"}`;
  assert.equal(body.length, 64);
  await s.write(concat(frame({ flowNo: 1, body }), frame({ flowNo: 2, funcNo: 2000 })));
  const first = await s.replies.next();
  assert.deepEqual([first!.header.flowNo, first!.header.errNo], [1, -1]);
  assert.equal(text(await s.replies.next()), LEGACY_PROXY_REPLY);
  assert.equal(pool.calls.length, 0);
});

Deno.test("LegacySession answers -2 when the pool throws", async () => {
  const pool = new FakePool();
  pool.submit = () => {
    throw new Error("broken pool");
  };
  await using s = await open(pool);
  await s.write(frame({ flowNo: 1, body: ALLEN }));
  const reply = await s.replies.next();
  assert.deepEqual([reply!.header.errNo, text(reply)], [-2, errorBody(-2, "illegal request")]);
});

Deno.test("LegacySession answers a bad tag mid-stream -1 and closes", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(concat(frame({ flowNo: 5, funcNo: 2000 }), enc.encode("CCRPX and more")));
  const replies = await s.replies.all();
  assert.equal(replies.length, 2);
  assert.equal(text(replies[0]!), LEGACY_PROXY_REPLY);
  assert.equal(replies[1]!.header.errNo, -1);
  assert.equal(text(replies[1]!), errorBody(-1, "unknow request"));
});

Deno.test("LegacySession answers -2 to new frames while the proxy drains", async () => {
  const pool = new FakePool();
  let draining = false;
  await using s = await open(pool, { draining: () => draining });
  await s.write(frame({ flowNo: 1, body: ALLEN }));
  await pool.waitFor(1);
  draining = true;
  await s.write(concat(frame({ flowNo: 2, body: ALLEN }), frame({ flowNo: 3, funcNo: 2000 })));
  pool.answer(0, "before");
  assert.equal(text(await s.replies.next()), "before");
  for (const flowNo of [2, 3]) {
    const reply = await s.replies.next();
    assert.equal(reply!.header.flowNo, flowNo);
    assert.equal(text(reply), errorBody(-2, "illegal request"));
  }
  assert.equal(pool.calls.length, 1);
});

Deno.test("LegacySession stops reading at maxInFlight frames and resumes as replies go out", async () => {
  const pool = new FakePool();
  await using s = await open(pool, { maxInFlight: 2 });
  await s.write(concat(...[1, 2, 3, 4, 5].map((flowNo) => frame({ flowNo, body: ALLEN }))));
  await pool.waitFor(2);
  await turns();
  assert.equal(pool.calls.length, 2, "no third frame while two are in flight");
  pool.answer(1, "r2"); // out of order: the first still holds its place
  await turns();
  assert.equal(pool.calls.length, 2);
  pool.answer(0, "r1");
  await pool.waitFor(4);
  pool.answer(2, "r3");
  pool.answer(3, "r4");
  await pool.waitFor(5);
  pool.answer(4, "r5");
  for (let i = 1; i <= 5; i++) assert.equal(text(await s.replies.next()), `r${i}`);
});

Deno.test("LegacySession answers what is owed after the client ends its side, then closes", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(concat(frame({ flowNo: 1, body: ALLEN }), frame({ flowNo: 2, body: ALLEN })));
  await s.client.closeWrite();
  await pool.waitFor(2);
  pool.answer(1, "two");
  pool.answer(0, "one");
  const replies = await s.replies.all();
  assert.deepEqual(replies.map((r) => text(r)), ["one", "two"]);
  await s.session.done;
});

Deno.test("LegacySession.end() answers -2 to frames still at a worker, then closes; idempotent", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(concat(frame({ flowNo: 1, body: ALLEN }), frame({ flowNo: 2, body: ALLEN })));
  await pool.waitFor(2);
  pool.answer(1, "two");
  await Promise.all([s.session.end(), s.session.end()]);
  const replies = await s.replies.all();
  assert.deepEqual(replies.map((r) => [r.header.flowNo, text(r)]), [
    [1, errorBody(-2, "illegal request")],
    [2, "two"],
  ]);
  pool.answer(0, "too late"); // dropped, no throw
  assert.equal(s.session.closed, true);
});

Deno.test("LegacySession closes once the client is gone and its replies are settled, and tells the pool", async () => {
  const pool = new FakePool();
  await using s = await open(pool);
  await s.write(frame({ flowNo: 1, body: ALLEN }));
  await pool.waitFor(1);
  s.client.close();
  pool.answer(0, "nobody listens"); // written into the void, or dropped: no throw
  await s.session.done;
  assert.equal(pool.forgotten, 1);
  pool.answer(0, "twice"); // an answer for a closed session is ignored
});

Deno.test("LegacySession serves the bytes read while sniffing first", async () => {
  const pool = new FakePool();
  const whole = frame({ flowNo: 4, funcNo: 2000 });
  await using s = await open(pool, { initial: whole.subarray(0, 3) });
  await s.write(whole.subarray(3));
  const reply = await s.replies.next();
  assert.equal(reply!.header.flowNo, 4);
  assert.equal(text(reply), LEGACY_PROXY_REPLY);
});

Deno.test("LegacySession rejects a maxInFlight that is not a positive integer", () => {
  const conn = {} as Deno.Conn;
  assert.throws(
    () => new LegacySession(conn, { pool: new FakePool(), maxInFlight: 0 }),
    RangeError,
  );
});

Deno.test("legacyErrorFor() maps UNKNOWN_FUNCTION and METHOD_NOT_FOUND to -1, the rest to -2", () => {
  assert.deepEqual(legacyErrorFor(UNKNOWN_FUNCTION), { errNo: -1, text: "unknow request" });
  assert.deepEqual(legacyErrorFor("METHOD_NOT_FOUND"), { errNo: -1, text: "unknow request" });
  for (const code of ["WORKER_EXITED", "NO_WORKERS", "QUEUE_FULL", "SHUTTING_DOWN", "X"]) {
    assert.deepEqual(legacyErrorFor(code), { errNo: -2, text: "illegal request" });
  }
});

Deno.test("userIdOf() finds a non-empty string user_id in a JSON object body", () => {
  assert.equal(userIdOf('{"user_id":"allen","x":1}'), "allen");
  assert.equal(userIdOf(' { "user_id" : "b" } '), "b");
  for (const body of ["", "{", "null", "[]", '"allen"', '{"user_id":null}', '{"user_id":""}']) {
    assert.equal(userIdOf(body), undefined, body);
  }
});

Deno.test("legacy.call of the built-in worker answers 1000, 2000 and its pid, UNKNOWN_FUNCTION otherwise", async () => {
  const call = legacyMethods()[LEGACY_CALL_METHOD]!;
  const req = (func_no: number) => ({ func_no, flow_no: 1, user_id: "allen", body: ALLEN });
  assert.equal(await call(req(1000)), "handle 1000 function successful");
  assert.equal(await call(req(2000)), "handle 2000 function successful");
  assert.equal(await call(req(LEGACY_FUNC_PID)), `{"pid":${Deno.pid}}`);
  assert.throws(() => call(req(3)), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, UNKNOWN_FUNCTION);
    return true;
  });
  for (const bad of [null, [], { func_no: -1 }, { func_no: 1.5 }, { func_no: 1000, body: 3 }]) {
    assert.throws(() => call(bad), (err: unknown) => {
      assert.ok(err instanceof ProxyError);
      assert.equal(err.code, ErrorCode.INVALID_PARAMS);
      return true;
    });
  }
  assert.deepEqual(Object.keys(builtinLegacyFunctions()).sort(), ["1000", "1001", "2000"]);
});
