/**
 * Unit tests of the load test: histogram, report, generator accounting
 * (against in-process servers), chaos target selection, live line.
 */

import assert from "node:assert/strict";
import { BackendServer } from "../lib/backend/backend_server.ts";
import type { Address } from "../lib/net/address.ts";
import {
  createEnvelope,
  decodeMessage,
  encodeResult,
  FrameDecoder,
  readEnvelope,
} from "../lib/protocol/mod.ts";
import { LatencyHistogram } from "../lib/loadtest/latency_histogram.ts";
import { formatProgress, LiveLine } from "../lib/loadtest/live_line.ts";
import { parsePercentileDistribution } from "../lib/loadtest/percentile_distribution.ts";
import { CheckCode, LoadGenerator, type LoadResult } from "../lib/loadtest/load_generator.ts";
import { programCommandLine } from "../lib/process/self_command.ts";
import { buildReport, formatReport, type LoadTestConfig } from "../lib/loadtest/report.ts";
import { mainShare, parseMixEntry } from "../lib/loadtest/request_mix.ts";
import { CHAOS_UNSUPPORTED, WorkerKiller } from "../lib/loadtest/worker_killer.ts";

const LOCAL = { transport: "tcp", hostname: "127.0.0.1", port: 0 } as const;

function assertEquals(actual: unknown, expected: unknown): void {
  assert.deepEqual(actual, expected);
}

function assertAlmostEquals(actual: number, expected: number, tolerance: number): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${actual} is not within ${tolerance} of ${expected}`,
  );
}

function assertGreater(actual: number, than: number): void {
  assert.ok(actual > than, `${actual} is not greater than ${than}`);
}

async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new assert.AssertionError({ message: "expected a rejection" });
}

// --- histogram -------------------------------------------------------------

Deno.test("LatencyHistogram.summary() gives percentiles of what was recorded, in ms", () => {
  const h = new LatencyHistogram();
  for (let ms = 1; ms <= 1000; ms++) h.record(ms);
  const s = h.summary();
  assertEquals(h.count, 1000);
  // 3 significant digits: within 0.1 %.
  assertAlmostEquals(s.p50, 500, 0.5);
  assertAlmostEquals(s.p90, 900, 0.9);
  assertAlmostEquals(s.p99, 990, 1);
  assertAlmostEquals(s.p999, 999, 1);
  assertAlmostEquals(s.max, 1000, 1);
  assertAlmostEquals(s.mean, 500.5, 0.5);
  assertAlmostEquals(h.percentile(25), 250, 0.25);
});

Deno.test("LatencyHistogram keeps microseconds and clamps what is out of range", () => {
  const h = new LatencyHistogram({ highestMs: 10 });
  h.record(0.123);
  h.record(-5); // a clock going backwards counts as 0
  h.record(60_000); // beyond the range: recorded as the highest
  assertEquals(h.count, 3);
  assertAlmostEquals(h.percentile(50), 0.123, 0.001);
  assertAlmostEquals(h.summary().max, 10, 0.01);
  assertEquals(h.percentile(0), 0);
});

Deno.test("LatencyHistogram never reports a percentile above max", () => {
  // 10.001 ms lies in a bucket of 8 µs whose top is 10.007 ms: HDR's
  // percentile is that top, the max is exact.
  const h = new LatencyHistogram();
  for (let i = 0; i < 998; i++) h.record(1);
  h.record(10.001);
  h.record(10.001);
  const s = h.summary();
  assertEquals(s.max, 10.001);
  assertEquals(s.p999, 10.001);
  assertEquals(h.percentile(100), 10.001);
  assert.ok(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
});

Deno.test("LatencyHistogram.percentileDistribution() writes HdrHistogram's text, in ms", () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 1000; i++) h.record(0.1 + i * 0.007);
  h.record(10.001);
  const text = h.percentileDistribution();
  const lines = text.split("\n");
  assertEquals(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
  assertEquals(lines[1], "");
  assert.ok(text.endsWith("]\n"));
  const d = parsePercentileDistribution(text);
  assertEquals(d.totalCount, 1001);
  assertEquals(d.max, 10.001);
  assertAlmostEquals(d.mean, h.summary().mean, 0.001);
  assertGreater(d.stdDeviation, 0);
  assertEquals([d.buckets > 0, d.subBuckets], [true, 2048]);
  // Rows: value in ms, percentile rising to 1, count rising to the total, 1/(1-p).
  assertGreater(d.rows.length, 20);
  assertAlmostEquals(d.rows[0]!.value, 0.1, 0.001);
  assertEquals([d.rows[0]!.percentile, d.rows[0]!.totalCount, d.rows[0]!.inverse], [0, 1, 1]);
  for (let i = 1; i < d.rows.length; i++) {
    const [a, b] = [d.rows[i - 1]!, d.rows[i]!];
    assert.ok(a.value <= b.value && a.percentile < b.percentile && a.totalCount <= b.totalCount);
  }
  const median = d.rows.find((r) => r.percentile === 0.5)!;
  assertAlmostEquals(median.value, h.percentile(50), 0.01);
  assertAlmostEquals(median.inverse, 2, 0.001);
  const last = d.rows.at(-1)!;
  assertEquals([last.percentile, last.totalCount, last.inverse], [1, 1001, Infinity]);
});

Deno.test("parsePercentileDistribution() rejects text that is not a percentile distribution", () => {
  assert.throws(() => parsePercentileDistribution("Value,Percentile\n"), SyntaxError);
  const text = new LatencyHistogram().percentileDistribution();
  assertEquals(parsePercentileDistribution(text).rows, []);
  assert.throws(
    () => parsePercentileDistribution(text.replace(/#\[Max.*\n/, "")),
    /missing the footer's max/,
  );
  assert.throws(
    () => parsePercentileDistribution(text + "garbage\n"),
    /line 6: not a row nor a footer line: "garbage"/,
  );
});

Deno.test("LatencyHistogram.summary() is all zeros when empty", () => {
  assertEquals(new LatencyHistogram().summary(), {
    p50: 0,
    p90: 0,
    p99: 0,
    p999: 0,
    max: 0,
    mean: 0,
  });
});

// --- report ----------------------------------------------------------------

function config(over: Partial<LoadTestConfig> = {}): LoadTestConfig {
  return {
    target: "127.0.0.1:9",
    selfStarted: false,
    workers: null,
    method: "echo",
    payloadBytes: 64,
    connections: 2,
    pipeline: 1,
    rate: null,
    warmupMs: 0,
    chaosMs: null,
    expectedErrors: [],
    ...over,
  };
}

function result(over: Partial<LoadResult> = {}): LoadResult {
  const histogram = new LatencyHistogram();
  for (let i = 0; i < 400; i++) histogram.record(1 + (i % 4));
  return {
    requests: 400,
    succeeded: 400,
    sent: 400,
    measuredSent: 400,
    heldShare: 0,
    errors: {},
    unanswered: 0,
    connectionDrops: 0,
    durationMs: 2000,
    histogram,
    aborted: false,
    ...over,
  };
}

Deno.test("buildReport() has the JSON shape of proxy test --json", () => {
  const report = JSON.parse(JSON.stringify(buildReport(config(), result())));
  for (
    const key of ["requests", "rps", "errors", "unanswered", "latency_ms", "duration_s", "passed"]
  ) {
    assert.ok(key in report, `missing ${key}`);
  }
  assertEquals(Object.keys(report.latency_ms).sort(), ["max", "mean", "p50", "p90", "p99", "p999"]);
  assertEquals(report.requests, 400);
  assertEquals(report.rps, 200);
  assertEquals(report.duration_s, 2);
  assertEquals(report.errors, {});
  assertEquals(report.unanswered, 0);
  assertAlmostEquals(report.latency_ms.p50, 2, 0.01);
  assertAlmostEquals(report.latency_ms.max, 4, 0.01);
  assertEquals(report.passed, true);
  assertEquals(report.failures, []);
  assert.ok(!("crashes" in report), "crashes only with --chaos");
});

Deno.test("buildReport() fails a run with unanswered requests", () => {
  const report = buildReport(config(), result({ unanswered: 3 }));
  assertEquals(report.passed, false);
  assertEquals(report.unanswered, 3);
  assertEquals(report.failures, ["3 requests never answered"]);
});

Deno.test("buildReport() fails on unexpected errors and lists them by code", () => {
  const report = buildReport(
    config({ expectedErrors: ["HANDLER_ERROR"] }),
    result({ errors: { PAYLOAD_MISMATCH: 2, HANDLER_ERROR: 5, BAD_MSGID: 1 } }),
  );
  assertEquals(report.passed, false);
  assertEquals(report.failures, ["3 unexpected errors: BAD_MSGID 1, PAYLOAD_MISMATCH 2"]);
  assertEquals(Object.keys(report.errors), ["BAD_MSGID", "HANDLER_ERROR", "PAYLOAD_MISMATCH"]);
  assert.ok(formatReport(report).includes("HANDLER_ERROR 5 (expected)"));
});

Deno.test("buildReport() with chaos expects WORKER_EXITED and reports crashes", () => {
  const report = buildReport(
    config({ chaosMs: 200 }),
    result({ errors: { WORKER_EXITED: 7 }, succeeded: 393 }),
    { chaos: { crashes: 4, skipped: 0, lastError: null } },
  );
  assertEquals(report.passed, true);
  assertEquals(report.crashes, 4);
  assertEquals(report.worker_exited, 7);
  assertEquals(report.expected_errors, ["WORKER_EXITED"]);
  assert.ok(formatReport(report).includes("4 workers killed; 7 requests answered WORKER_EXITED"));
});

Deno.test("buildReport() fails when chaos killed nothing, or the proxy did not stop cleanly", () => {
  const report = buildReport(config({ chaosMs: 200 }), result(), {
    chaos: { crashes: 0, skipped: 3, lastError: "no worker was ready" },
    proxyExit: { code: 137, killed: true },
  });
  assertEquals(report.passed, false);
  assertEquals(report.failures, [
    "--chaos killed no worker (no worker was ready)",
    "the proxy did not stop on SIGTERM in time and was killed",
  ]);
  assertEquals(report.proxy_exit_code, 137);
});

Deno.test("buildReport() fails a run in which nothing was answered", () => {
  const report = buildReport(
    config(),
    result({ requests: 0, succeeded: 0, histogram: new LatencyHistogram() }),
  );
  assertEquals(report.passed, false);
  assertEquals(report.failures, ["no request was answered"]);
  assertEquals(report.rps, 0);
  assertEquals(report.latency_ms.p99, 0);
});

Deno.test("formatReport() says PASS or FAIL with the reasons", () => {
  const pass = formatReport(buildReport(config({ rate: 200 }), result()));
  assert.ok(pass.includes("Requests    400 (200.0/s)"), pass);
  assert.ok(pass.includes("200 requests/s (open loop)"), pass);
  assert.ok(pass.trimEnd().endsWith("Result      PASS"), pass);
  const fail = formatReport(buildReport(config(), result({ unanswered: 1, connectionDrops: 1 })));
  assert.ok(
    fail.includes("Result      FAIL: 1 request never answered; 1 connection closed by the server"),
    fail,
  );
});

Deno.test("buildReport() gives the rate achieved and passes when it is the rate asked", () => {
  const report = buildReport(config({ rate: 200 }), result({ measuredSent: 396 }));
  assertEquals(report.rate_achieved, 198);
  assertEquals(report.rate_fell_short, false);
  assertEquals(report.rate_bottleneck, null);
  assertEquals(report.passed, true);
  assert.ok(formatReport(report).includes("Rate        asked 200/s, achieved 198/s\n"));
  const closed = buildReport(config(), result());
  assertEquals([closed.rate_achieved, closed.rate_fell_short], [null, false]);
  assert.ok(!formatReport(closed).includes("Rate "));
});

Deno.test("buildReport() fails a run whose generator could not keep up with --rate", () => {
  // 20,000/s asked for 2 s, 23,600 sent: 11,800/s, and the connections had room.
  const report = buildReport(
    config({ rate: 20_000 }),
    result({ measuredSent: 23_600, heldShare: 0.1 }),
  );
  assertEquals(report.rate_achieved, 11_800);
  assertEquals(report.rate_fell_short, true);
  assertEquals(report.rate_bottleneck, "generator");
  assertEquals(report.passed, false);
  assertEquals(report.failures, ["the rate fell short: asked 20,000/s, achieved 11,800/s"]);
  const text = formatReport(report);
  assert.ok(
    text.includes(
      "Rate        asked 20,000/s, achieved 11,800/s: the generator could not keep up " +
        "(its connections had room: this process could not send fast enough)",
    ),
    text,
  );
  const json = JSON.parse(JSON.stringify(report));
  assertEquals([json.rate_achieved, json.rate_fell_short], [11_800, true]);
});

Deno.test("buildReport() blames the target when connections waited at their pipeline limit", () => {
  const report = buildReport(
    config({ rate: 1000, pipeline: 4 }),
    result({ measuredSent: 100, heldShare: 0.9 }),
  );
  assertEquals(report.rate_bottleneck, "target");
  assert.ok(
    formatReport(report).includes(
      "full with 4 unanswered each: the target answers too slowly for this rate with 2 x 4 in flight",
    ),
  );
});

// --- request mix -----------------------------------------------------------

Deno.test("parseMixEntry() reads METHOD:PARAMS:SHARE%, params as JSON with colons inside", () => {
  assertEquals(parseMixEntry("spin:[5000]:5%"), { method: "spin", params: [5000], share: 0.05 });
  assertEquals(parseMixEntry('echo:[{"a":"b:c"}]:12.5%'), {
    method: "echo",
    params: [{ a: "b:c" }],
    share: 0.125,
  });
  assertEquals(parseMixEntry("ping:[]:100%").share, 1);
});

Deno.test("parseMixEntry() rejects what is not METHOD:PARAMS:SHARE%", () => {
  for (
    const [text, why] of [
      ["spin", "missing a part"],
      ["spin:5%", "missing a part"],
      [":[1]:5%", "missing a part"],
      ["spin:[1:5%", "PARAMS is not JSON"],
      ["spin:5000:5%", "PARAMS is not a JSON array"],
      ["spin:[1]:5", "SHARE is not a percentage"],
      ["spin:[1]:0%", "SHARE must be above 0% and at most 100%"],
      ["spin:[1]:101%", "SHARE must be above 0% and at most 100%"],
    ]
  ) {
    assert.throws(() => parseMixEntry(text!), (err: Error) => {
      assert.ok(err instanceof SyntaxError);
      assert.ok(err.message.includes(why!), err.message);
      return true;
    });
  }
});

Deno.test("mainShare() gives the main request the rest, and refuses over 100% or a repeated method", () => {
  const spin = { method: "spin", params: [5000], share: 0.05 };
  assertAlmostEquals(mainShare([spin], "echo"), 0.95, 1e-12);
  assertEquals(mainShare([], "echo"), 1);
  assert.throws(
    () => mainShare([spin, { method: "sleep", params: [1], share: 0.96 }], "echo"),
    /the shares add up to 101%, above 100%/,
  );
  assert.throws(() => mainShare([spin], "spin"), /method spin given twice/);
});

Deno.test("buildReport() and formatReport() give the latency of each method of a mix", () => {
  const echo = new LatencyHistogram();
  const spin = new LatencyHistogram();
  for (let i = 0; i < 380; i++) echo.record(1);
  for (let i = 0; i < 20; i++) spin.record(5);
  const report = buildReport(
    config({ mix: [{ method: "spin", params: [5000], share: 0.05 }] }),
    result({
      byMethod: [
        { method: "echo", share: 0.95, requests: 380, succeeded: 380, histogram: echo },
        {
          method: "spin",
          params: [5000],
          share: 0.05,
          requests: 20,
          succeeded: 20,
          histogram: spin,
        },
      ],
    }),
  );
  const json = JSON.parse(JSON.stringify(report));
  assertEquals(json.by_method.map((m: { method: string }) => m.method), ["echo", "spin"]);
  assertEquals(json.by_method[1].params, [5000]);
  assertEquals(json.by_method[1].share_pct, 5);
  assertEquals(json.by_method[1].requests, 20);
  assertEquals(json.by_method[1].latency_ms.p99, 5);
  assertEquals(json.by_method[0].latency_ms.p99, 1);
  assert.ok(!("params" in json.by_method[0]));
  const text = formatReport(report);
  assert.ok(text.includes("echo with 64 B payloads, mixed with spin(5000) 5.0%;"), text);
  assert.ok(text.includes("            echo (95.0%, 380): p50 1.000"), text);
  assert.ok(text.includes("            spin (5.0%, 20): p50 5.000"), text);
  assert.ok(!("by_method" in buildReport(config(), result())));
});

// --- generator against in-process servers ----------------------------------

async function backend(methods: Record<string, (...p: unknown[]) => unknown>) {
  const server = new BackendServer({ address: LOCAL, methods });
  const address = await server.listen();
  return {
    address,
    [Symbol.asyncDispose]: () => server.close(AbortSignal.abort()),
  };
}

Deno.test("LoadGenerator checks echoes and counts every answer once", async () => {
  await using server = await backend({ echo: (x) => x });
  const gen = new LoadGenerator({
    address: server.address,
    connections: 3,
    pipeline: 4,
    durationMs: 300,
    payloadBytes: 100,
  });
  const r = await gen.run();
  assertGreater(r.requests, 0);
  assertEquals(r.errors, {});
  assertEquals(r.unanswered, 0);
  assertEquals(r.connectionDrops, 0);
  assertEquals(r.succeeded, r.requests);
  assertEquals(r.sent, r.requests); // no warm-up: every request sent is measured
  assertEquals(r.histogram.count, r.requests);
  assertAlmostEquals(r.durationMs, 300, 50);
});

Deno.test("LoadGenerator sends a mix in the shares drawn, and measures each method apart", async () => {
  const spun: unknown[][] = [];
  await using server = await backend({
    echo: (x) => x,
    spin: (...params) => {
      spun.push(params);
      return "done";
    },
  });
  // A fixed cycle of "random" numbers: one in four is below the 25 % of spin.
  const cycle = [0.1, 0.5, 0.7, 0.9];
  let calls = 0;
  let picked = 0;
  const r = await new LoadGenerator({
    address: server.address,
    connections: 2,
    pipeline: 4,
    durationMs: 200,
    mix: [{ method: "spin", params: [7, "x"], share: 0.25 }],
    random: () => {
      const n = cycle[calls++ % cycle.length]!;
      if (n < 0.25) picked++;
      return n;
    },
  }).run();
  assertEquals(r.errors, {}); // echoes still checked, spin answers not compared
  assertEquals(r.unanswered, 0);
  assertEquals(calls, r.sent);
  const [echo, spin] = r.byMethod!;
  assertEquals([echo!.method, echo!.share, spin!.method, spin!.share], [
    "echo",
    0.75,
    "spin",
    0.25,
  ]);
  assertEquals(spin!.requests, picked);
  assertEquals(spun.length, picked);
  assert.deepEqual(spun[0], [7, "x"]);
  assertEquals(echo!.requests + spin!.requests, r.requests);
  assertEquals(echo!.histogram.count + spin!.histogram.count, r.histogram.count);
  assertEquals(echo!.succeeded, echo!.requests);
});

Deno.test("LoadGenerator refuses a mix over 100%", () => {
  assert.throws(
    () =>
      new LoadGenerator({
        address: LOCAL,
        durationMs: 1,
        mix: [{ method: "a", params: [], share: 0.6 }, { method: "b", params: [], share: 0.6 }],
      }),
    RangeError,
  );
});

Deno.test("LoadGenerator leaves warm-up requests out of the measurements", async () => {
  await using server = await backend({ echo: (x) => x });
  const r = await new LoadGenerator({
    address: server.address,
    connections: 1,
    durationMs: 150,
    warmupMs: 150,
  }).run();
  assertGreater(r.requests, 0);
  assertGreater(r.sent, r.requests);
  assertEquals(r.unanswered, 0);
});

Deno.test("LoadGenerator counts requests never answered as unanswered", async () => {
  await using server = await backend({ hang: () => new Promise(() => {}) });
  const r = await new LoadGenerator({
    address: server.address,
    connections: 2,
    pipeline: 3,
    durationMs: 100,
    graceMs: 100,
    method: "hang",
    params: [],
  }).run();
  assertEquals(r.sent, 6);
  assertEquals(r.unanswered, 6);
  assertEquals(r.requests, 0);
});

Deno.test("LoadGenerator counts error answers by their code", async () => {
  await using server = await backend({
    echo: () => {
      throw new Error("no");
    },
  });
  const r = await new LoadGenerator({ address: server.address, connections: 1, durationMs: 100 })
    .run();
  assertGreater(r.requests, 0);
  assertEquals(r.succeeded, 0);
  assertEquals(r.errors, { HANDLER_ERROR: r.requests });
});

Deno.test("LoadGenerator in open loop counts time held back by a target that does not answer", async () => {
  await using server = await backend({ hang: () => new Promise(() => {}) });
  const r = await new LoadGenerator({
    address: server.address,
    connections: 2,
    pipeline: 1,
    durationMs: 200,
    graceMs: 50,
    rate: 1000,
    method: "hang",
    params: [],
  }).run();
  // One request per connection, then every later one is due and held back.
  assertEquals(r.measuredSent, 2);
  assertGreater(r.heldShare, 0.8);
  const report = buildReport(config({ rate: 1000, connections: 2 }), r);
  assertEquals(report.rate_fell_short, true);
  assertEquals(report.rate_bottleneck, "target");
});

Deno.test("LoadGenerator sends at the fixed rate in open loop", async () => {
  await using server = await backend({ echo: (x) => x });
  const r = await new LoadGenerator({
    address: server.address,
    connections: 4,
    durationMs: 500,
    rate: 400,
  }).run();
  // 400/s for 0.5 s: 200 requests, give or take the last tick.
  assertAlmostEquals(r.requests, 200, 5);
  assertAlmostEquals(r.measuredSent, 200, 5);
  assert.ok(r.heldShare < 0.5, `heldShare ${r.heldShare}`);
  assertEquals(r.unanswered, 0);
});

/**
 * A raw server that answers each request through `answer(msgid, frame)`,
 * which returns the bytes to send back (or null for none).
 */
function rawServer(answer: (msgid: number, frame: Uint8Array) => Uint8Array | null) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void (async () => {
        const decoder = new FrameDecoder();
        const env = createEnvelope();
        try {
          while (true) {
            const n = await conn.read(decoder.reserve());
            if (n === null) break;
            decoder.commit(n);
            let frame;
            while ((frame = decoder.next()) !== null) {
              readEnvelope(frame, env);
              const out = answer(env.msgid, frame);
              if (out) await conn.write(out);
            }
          }
        } catch {
          // closed
        }
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      })();
    }
  })();
  const address: Address = { ...LOCAL, port: (listener.addr as Deno.NetAddr).port };
  return {
    address,
    conns,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving.catch(() => {});
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

Deno.test("LoadGenerator counts an answer with a msgid never sent as BAD_MSGID", async () => {
  await using server = rawServer((msgid) => encodeResult(msgid + 1_000_000, null));
  const r = await new LoadGenerator({
    address: server.address,
    connections: 1,
    pipeline: 2,
    durationMs: 50,
    graceMs: 50,
  }).run();
  assertEquals(r.errors, { [CheckCode.BAD_MSGID]: 2 });
  assertEquals(r.unanswered, 2); // the real msgids never got an answer
  assertEquals(r.requests, 0);
});

Deno.test("LoadGenerator counts an echo that differs from what was sent as PAYLOAD_MISMATCH", async () => {
  let n = 0;
  await using server = rawServer((msgid, frame) => {
    const bytes = ((decodeMessage(frame) as { params: unknown[] }).params[0] as Uint8Array).slice();
    if (n++ % 2 === 1) bytes[bytes.length - 1]! ^= 1; // every other answer is corrupted
    return encodeResult(msgid, bytes);
  });
  const r = await new LoadGenerator({ address: server.address, connections: 1, durationMs: 100 })
    .run();
  assertGreater(r.requests, 2);
  const mismatches = r.errors[CheckCode.PAYLOAD_MISMATCH] ?? 0;
  assertAlmostEquals(mismatches, r.requests / 2, 1);
  assertEquals(r.succeeded + mismatches, r.requests);
  assertEquals(r.unanswered, 0);
});

Deno.test("LoadGenerator accepts an echo encoded differently but equal", async () => {
  await using server = rawServer((msgid, frame) => {
    const payload = (decodeMessage(frame) as { params: unknown[] }).params[0] as Uint8Array;
    // bin32 instead of the shortest bin8: same value, other bytes.
    const head = new Uint8Array([0xc6, 0, 0, 0, payload.length]);
    const prefix = encodeResult(msgid, null); // [1, msgid, nil, nil]
    const out = new Uint8Array(prefix.length - 1 + head.length + payload.length);
    out.set(prefix.subarray(0, prefix.length - 1));
    out.set(head, prefix.length - 1);
    out.set(payload, prefix.length - 1 + head.length);
    return out;
  });
  const r = await new LoadGenerator({ address: server.address, connections: 1, durationMs: 100 })
    .run();
  assertGreater(r.requests, 0);
  assertEquals(r.errors, {});
  assertEquals(r.succeeded, r.requests);
});

Deno.test("LoadGenerator counts requests lost with a dropped connection as unanswered", async () => {
  let answered = 0;
  await using server = rawServer((msgid) => {
    if (++answered === 5) {
      // drop every connection: requests in flight are lost
      queueMicrotask(() => {
        for (const c of server.conns) {
          try {
            c.close();
          } catch {
            // already closed
          }
        }
      });
      return null;
    }
    return answered > 5 ? null : encodeResult(msgid, null);
  });
  const r = await new LoadGenerator({
    address: server.address,
    connections: 1,
    pipeline: 1,
    durationMs: 150,
    graceMs: 100,
    method: "ping",
    params: [],
  }).run();
  assertGreater(r.connectionDrops, 0);
  assertGreater(r.unanswered, 0);
  assertEquals(r.requests, 4);
});

Deno.test("LoadGenerator.run() rejects with CONNECT_FAILED when the target is down", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const err = await rejection(() =>
    new LoadGenerator({ address: { ...LOCAL, port }, durationMs: 100 }).run()
  );
  assertEquals((err as { code?: string }).code, "CONNECT_FAILED");
});

// --- chaos ----------------------------------------------------------------------

Deno.test("WorkerKiller kills only ready workers whose parent is the proxy", async () => {
  const workers = [
    { id: 1, pid: 101, state: "starting" },
    { id: 2, pid: 102, state: "ready" },
    { id: 3, pid: null, state: "ready" },
    { id: 4, pid: 104, state: "ready" },
  ];
  await using server = await backend({ "proxy.stats": () => ({ pid: 50, workers }) });
  const killed: number[] = [];
  const killer = await WorkerKiller.connect({
    address: server.address,
    intervalMs: 1000,
    random: () => 0.99, // the last ready one
    kill: (pid) => killed.push(pid),
    parentOf: (pid) => Promise.resolve(pid === 104 ? 50 : 1),
  });
  try {
    assertEquals(await killer.killOne(), 104);
    assertEquals(killed, [104]);
    workers[3]!.state = "exited";
    assertEquals(await killer.killOne(), null); // 102's parent is not the proxy
    assertEquals(killed, [104]);
    assertEquals(killer.crashes, 1);
    assertEquals(killer.skipped, 1);
    assert.ok(killer.lastError?.includes("not a child of the proxy"));
  } finally {
    await killer.close();
  }
});

Deno.test("WorkerKiller.connect() refuses a target without proxy.stats", async () => {
  await using server = await backend({ echo: (x) => x });
  const err = await rejection(() =>
    WorkerKiller.connect({ address: server.address, intervalMs: 100 })
  );
  assertEquals((err as { code?: string }).code, CHAOS_UNSUPPORTED);
});

Deno.test("WorkerKiller.connect() refuses a target on another machine", async () => {
  const err = await rejection(() =>
    WorkerKiller.connect({
      address: { transport: "tcp", hostname: "192.0.2.1", port: 1 },
      intervalMs: 100,
    })
  );
  assertEquals((err as { code?: string }).code, CHAOS_UNSUPPORTED);
});

// --- program command line, live line ----------------------------------------

Deno.test("programCommandLine() re-invokes the program as the pool does", () => {
  const runtime = {
    standalone: false,
    execPath: "/usr/bin/deno",
    mainModule: "file:///app/cli/main.ts",
    denoFlags: ["--allow-net", "--config=/app/deno.json"],
  };
  assertEquals(programCommandLine(["serve", "--port", "0"], runtime), {
    cmd: "/usr/bin/deno",
    args: [
      "run",
      "--allow-net",
      "--config=/app/deno.json",
      "file:///app/cli/main.ts",
      "serve",
      "--port",
      "0",
    ],
  });
  assertEquals(
    programCommandLine(["backend"], { ...runtime, standalone: true, execPath: "/opt/proxy" }),
    {
      cmd: "/opt/proxy",
      args: ["backend"],
    },
  );
});

Deno.test("LiveLine rewrites one line and erases it when stopped", () => {
  const written: string[] = [];
  let now = 0;
  const source = { answered: 0, errorCount: 2, inFlight: 16, elapsedMs: 0 };
  const live = new LiveLine({
    source,
    totalMs: 10_000,
    write: (t) => written.push(t),
    now: () => now,
  });
  live.start();
  now = 1000;
  source.answered = 5000;
  source.elapsedMs = 1000;
  live.update();
  live.stop();
  live.stop();
  assertEquals(written, [
    "\r\x1b[Kelapsed 1.0/10.0 s  rate 5,000/s  errors 2  in flight 16",
    "\r\x1b[K",
  ]);
  assertEquals(
    formatProgress(12_000, 10_000, 0, 0, 0),
    "elapsed 10.0/10.0 s  rate 0/s  errors 0  in flight 0",
  );
});
