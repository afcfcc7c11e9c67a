/**
 * The config file, its precedence, what a reload does with a change, and the
 * pure parts of the admin endpoint: the Prometheus writer and per-request
 * metrics.
 */

import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../lib/options/config_file.ts";
import {
  loadServeSettings,
  resolveServeSettings,
  SERVE_OPTIONS,
} from "../lib/options/serve_options.ts";
import { planReload } from "../lib/proxy/reload_plan.ts";
import { ExpositionWriter, Histogram } from "../lib/metrics/prometheus.ts";
import { OTHER_METHOD, RequestMetrics } from "../lib/metrics/request_metrics.ts";
import { Call } from "../lib/dispatch/call.ts";
import type { Host } from "../lib/dispatch/host.ts";
import { tempDir } from "./helpers/process.ts";

function configError(text: string): string {
  try {
    parseConfig(text, "proxy.toml", SERVE_OPTIONS);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseConfig reads every kind of option by its snake_case key", () => {
  const values = parseConfig(
    [
      "# the front",
      'host = "0.0.0.0"',
      "port = 9000",
      'pool = "dynamic"',
      'queue_timeout = "2s"',
      'max_message_size = "8MiB"',
      "test_methods = true",
      'upstream = ["tcp:10.0.0.1:9000,weight=2", "dns:backends.internal:9000"]',
      'retry_idempotent = ["get", "info"]',
      "",
      "[method_timeout]",
      'slow = "30s"',
      "echo = 500",
    ].join("\n"),
    "proxy.toml",
    SERVE_OPTIONS,
  );
  assert.deepEqual(values, {
    host: "0.0.0.0",
    port: 9000,
    pool: "dynamic",
    queueTimeout: 2000,
    maxMessageSize: 8 * 1024 * 1024,
    testMethods: true,
    upstream: ["tcp:10.0.0.1:9000,weight=2", "dns:backends.internal:9000"],
    retryIdempotent: ["get", "info"],
    methodTimeout: { slow: 30_000, echo: 500 },
  });
});

Deno.test("config errors name the file, the line and the key", () => {
  assert.equal(
    configError("port = 1\n\nqueue_size = -1\n"),
    "proxy.toml:3: queue_size: expected an integer from 0 to 10000000, got -1",
  );
  assert.equal(
    configError('workers = "four"'),
    'proxy.toml:1: workers: expected an integer from 0 to 4096, got "four"',
  );
  assert.equal(configError("\nqueue_sise = 3"), "proxy.toml:2: queue_sise: no such option");
  assert.equal(
    configError('[method_timeout]\necho = "1s"\nslow = "forever"\n'),
    'proxy.toml:3: method_timeout.slow: expected a duration such as 500ms, 10s or 2m, got "forever"',
  );
  assert.match(configError("port = \n"), /^proxy\.toml:1: not valid TOML: /);
  // Tables and dotted keys are named by their line too, and a table where a value belongs says so.
  assert.equal(configError("port = 1\n[foo]\na = 1\n"), "proxy.toml:2: foo: no such option");
  assert.equal(configError("port = 1\nfoo.bar = 1\n"), "proxy.toml:2: foo: no such option");
  assert.equal(
    configError("port = 1\n[workers]\na = 1\n"),
    'proxy.toml:2: workers: expected an integer from 0 to 4096, got a table {"a":1}',
  );
  // A file cannot name another file, nor ask for --check.
  assert.equal(configError('config = "other.toml"'), "proxy.toml:1: config: no such option");
  assert.equal(configError("check = true"), "proxy.toml:1: check: no such option");
  assert.equal(
    configError('upstream = ["ftp:x"]'),
    `proxy.toml:1: upstream: ${
      (() => {
        try {
          resolveServeSettings({ upstream: ["ftp:x"] });
        } catch (err) {
          return (err as Error).message.replace(/^--upstream: /, "");
        }
      })()
    }`,
  );
});

Deno.test("flags win over the file, the file over the defaults", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/proxy.toml`;
  await Deno.writeTextFile(file, 'workers = 3\nqueue_size = 64\nrequest_timeout = "5s"\n');
  const s = await loadServeSettings({ config: file, workers: 5 });
  assert.equal(s.workers, 5, "the flag");
  assert.equal(s.queueSize, 64, "the file");
  assert.equal(s.requestTimeout, 5000, "the file");
  assert.equal(s.queueTimeout, resolveServeSettings({}).queueTimeout, "the default");
  // Flags left out (undefined) do not hide the file's values.
  const unset = { config: file, workers: undefined } as unknown as { config: string };
  assert.equal((await loadServeSettings(unset)).workers, 3);
  // A rule that ties options together sees them merged: 0 workers is fine
  // when the file gives an upstream.
  await Deno.writeTextFile(file, 'upstream = ["tcp:127.0.0.1:9"]\n');
  assert.equal((await loadServeSettings({ config: file, workers: 0 })).workers, 0);
  await assert.rejects(
    loadServeSettings({ config: `${dir.path}/missing.toml` }),
    /missing\.toml: cannot read/,
  );
  // A rule that ties options together names the file's line when the file broke it...
  await Deno.writeTextFile(file, 'pool = "dynamic"\nmax_workers = 2\nmin_workers = 5\n');
  await assert.rejects(
    loadServeSettings({ config: file }),
    (err: Error) => err.message === `${file}:3: min_workers: 5 is above --max-workers 2`,
  );
  // ...and the flag when a flag did.
  await assert.rejects(
    loadServeSettings({ config: file, minWorkers: 7 }),
    (err: Error) => err.message === "--min-workers: 7 is above --max-workers 2",
  );
});

Deno.test("planReload sorts changes into live, rolling and restart-only ones", () => {
  const before = resolveServeSettings({ workers: 2, upstream: ["tcp:127.0.0.1:9000"] });
  const after = resolveServeSettings({
    workers: 3,
    upstream: ["tcp:127.0.0.1:9001"],
    requestTimeout: 5000,
    handler: ["./h.ts"],
    logLevel: "debug",
    port: 9999,
    maxConnections: 5,
  });
  const plan = planReload(before, after, true);
  assert.deepEqual(plan.pool, ["workers"]);
  assert.deepEqual(plan.dispatch, ["requestTimeout"]);
  assert.deepEqual(plan.worker, ["handler"]);
  assert.deepEqual(plan.front, ["logLevel"]);
  assert.equal(plan.upstreams, true);
  assert.deepEqual(plan.restart.sort(), ["--max-connections", "--port"]);
  // Without an upstream set to change, a new list waits for a restart.
  assert.deepEqual(planReload(before, after, false).restart.sort(), [
    "--max-connections",
    "--port",
    "--upstream",
  ]);
  // The pool mode, or workers appearing where there were none, need a restart.
  const dyn = planReload(before, resolveServeSettings({ pool: "dynamic", workers: 2 }), true);
  assert.ok(dyn.restart.includes("--pool"));
  assert.deepEqual(planReload(before, before, true).changed, []);
});

Deno.test("ExpositionWriter writes families once, escapes labels, and cumulates histogram buckets", () => {
  const h = new Histogram([0.001, 0.01]);
  for (const v of [0.0005, 0.001, 0.005, 3]) h.observe(v);
  const w = new ExpositionWriter()
    .series("x_total", "counter", "Things.\nMore.", [[{ method: 'a"b\\c\nd' }, 2]])
    .histogram("lat_seconds", "Latency.", [[{ m: "echo" }, h]]);
  assert.equal(
    w.text(),
    [
      "# HELP x_total Things.\\nMore.",
      "# TYPE x_total counter",
      'x_total{method="a\\"b\\\\c\\nd"} 2',
      "# HELP lat_seconds Latency.",
      "# TYPE lat_seconds histogram",
      'lat_seconds_bucket{m="echo",le="0.001"} 2',
      'lat_seconds_bucket{m="echo",le="0.01"} 3',
      'lat_seconds_bucket{m="echo",le="+Inf"} 4',
      'lat_seconds_sum{m="echo"} 3.0065',
      'lat_seconds_count{m="echo"} 4',
      "",
    ].join("\n"),
  );
  assert.throws(() => w.family("x_total", "counter", "again"), /written twice/);
});

Deno.test("RequestMetrics labels the first methods seen and counts the rest as other", () => {
  const m = new RequestMetrics({ maxMethods: 2 });
  const host = {} as Host;
  const requester = { closed: false, deliver() {}, fail() {} };
  const call = (method: string, errored = false) => {
    const c = new Call(requester, 1, method, new Uint8Array(0), 0, undefined);
    c.arrivedAt = 1000;
    c.sentAt = 1001;
    c.errored = errored;
    return c;
  };
  m.answered(call("a"), host, 1002);
  m.answered(call("b", true), host, 1003);
  m.answered(call("c"), host, 1004);
  m.answered(call("x".repeat(500)), host, 1004);
  m.failed(call("a"), "TIMEOUT", null, 1100);
  m.answered(call("a"), host, 1002); // a keeps its label
  const seen = Object.fromEntries(
    [...m.methods()].map(([name, s]) => [name, Object.fromEntries(s.codes)]),
  );
  assert.deepEqual(seen, {
    a: { OK: 2, TIMEOUT: 1 },
    b: { ERROR: 1 },
    [OTHER_METHOD]: { OK: 2 },
  });
  assert.equal(m.queueWait.count, 5);
  const a = [...m.methods()].find(([n]) => n === "a")![1];
  assert.equal(a.latency.count, 3);
  assert.ok(Math.abs(a.latency.sum - (0.002 + 0.1 + 0.002)) < 1e-9);
});
