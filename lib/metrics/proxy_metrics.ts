/**
 * What `/metrics` shows: the proxy's state (`proxy.stats`) and its
 * per-request metrics, in the Prometheus text format. Names follow
 * Prometheus conventions: `_total` for counters, base units (seconds, bytes).
 *
 * @module
 */

import type { ProxyStats } from "../proxy/proxy_server.ts";
import { ExpositionWriter, type Labels } from "./prometheus.ts";
import type { RequestMetrics } from "./request_metrics.ts";

const WORKER_STATES = ["starting", "ready", "draining", "restarting", "crash-loop"] as const;
const UPSTREAM_STATES = ["healthy", "unhealthy", "ejected", "draining", "connecting"] as const;

/** Process-level facts for the exposition. */
export interface ProcessInfo {
  /** The program's version. */
  version: string;
  /** When the process started, in seconds since the epoch. */
  startTimeSeconds: number;
  /** Admin requests refused for want of a token. */
  adminUnauthorized?: number;
}

/**
 * Renders the exposition.
 *
 * @param stats The proxy's state, as `proxy.stats` answers it.
 * @param requests Per-request metrics.
 * @param info Version and start time.
 */
export function renderMetrics(
  stats: ProxyStats,
  requests: RequestMetrics,
  info: ProcessInfo,
): string {
  const w = new ExpositionWriter();
  const t = stats.totals;
  w.series("proxy_info", "gauge", "The proxy's version (the value is always 1).", [
    [{ version: info.version, mode: stats.mode }, 1],
  ]);
  w.single(
    "process_start_time_seconds",
    "gauge",
    "Start time of the process since the epoch.",
    info.startTimeSeconds,
  );
  w.single(
    "process_resident_memory_bytes",
    "gauge",
    "Resident memory of the proxy process.",
    Math.round(stats.memory.rss_mb * 1048576),
  );

  // Requests, by method label and code.
  const byCode: [Labels, number][] = [];
  const latency: [Labels, RequestMetrics["queueWait"]][] = [];
  for (const [method, series] of requests.methods()) {
    for (const [code, n] of series.codes) byCode.push([{ method, code }, n]);
    if (series.latency.count > 0) latency.push([{ method }, series.latency]);
  }
  w.series(
    "proxy_requests_total",
    "counter",
    'Requests answered, by method (the first methods seen; the rest "other") and code ("OK", "ERROR" from a worker or upstream, or the proxy\'s own error code).',
    byCode,
  );
  w.histogram(
    "proxy_request_duration_seconds",
    "Time from a request read to its answer, as the proxy sees it.",
    latency,
  );
  w.single(
    "proxy_requests_received_total",
    "counter",
    "Requests received for workers or upstreams.",
    t.requests,
  );
  w.series(
    "proxy_in_flight",
    "gauge",
    "Requests sent to workers or upstreams and not yet answered.",
    [
      [
        undefined,
        stats.workers.reduce((n, x) => n + x.in_flight, 0) +
        stats.upstreams.reduce((n, u) => n + u.in_flight, 0),
      ],
    ],
  );

  // The queue.
  w.single(
    "proxy_queue_length",
    "gauge",
    "Requests waiting for a worker or upstream.",
    stats.queue.length,
  );
  w.single(
    "proxy_queue_capacity",
    "gauge",
    "Most requests that may wait (--queue-size).",
    stats.queue.capacity,
  );
  w.histogram(
    "proxy_queue_wait_seconds",
    "Time from a request read to its leaving for a worker or upstream.",
    [[undefined, requests.queueWait]],
  );
  w.single("proxy_queue_full_total", "counter", "Requests refused with QUEUE_FULL.", t.queue_full);
  w.single(
    "proxy_queue_timeouts_total",
    "counter",
    "Requests answered QUEUE_TIMEOUT.",
    t.queue_timeouts,
  );
  w.single(
    "proxy_timeouts_total",
    "counter",
    "Requests answered TIMEOUT (--request-timeout).",
    t.timeouts,
  );
  w.single(
    "proxy_kills_total",
    "counter",
    "Hosts aborted for a request stuck past --kill-after.",
    t.kills,
  );
  w.single("proxy_retries_total", "counter", "Requests sent once more to another host.", t.retries);

  // Workers.
  const states = new Map<string, number>(WORKER_STATES.map((s) => [s, 0]));
  for (const x of stats.workers) states.set(x.state, (states.get(x.state) ?? 0) + 1);
  w.series(
    "proxy_workers",
    "gauge",
    "Local worker processes, by state.",
    [...states].map(([state, n]) => [{ state }, n]),
  );
  w.single("proxy_worker_spawns_total", "counter", "Worker processes started.", t.spawns);
  w.single(
    "proxy_worker_crashes_total",
    "counter",
    "Workers that exited unasked after ready.",
    t.crashes,
  );
  w.single(
    "proxy_worker_exits_total",
    "counter",
    "Worker processes that exited, for any reason.",
    t.worker_exits,
  );
  w.single(
    "proxy_worker_recycles_total",
    "counter",
    "Workers replaced on purpose (reload, --max-requests, --max-memory).",
    t.recycles,
  );

  // Connections and bytes.
  const c = stats.connections;
  w.single("proxy_connections_open", "gauge", "Client connections open.", c.open);
  w.single("proxy_connections_total", "counter", "Client connections accepted.", c.total);
  w.single(
    "proxy_connections_refused_total",
    "counter",
    "Client connections refused (--max-connections, or while draining).",
    c.refused,
  );
  w.series(
    "proxy_connections_timed_out_total",
    "counter",
    "Client connections closed by a time limit.",
    [
      [{ limit: "message" }, c.message_timeouts],
      [{ limit: "idle" }, c.idle_timeouts],
    ],
  );
  w.series(
    "proxy_connections_rejected_total",
    "counter",
    "Client connections closed for failing TLS or authentication, or refused as legacy with auth on.",
    [
      [{ reason: "tls" }, c.tls_failures],
      [{ reason: "auth" }, c.auth_failures],
      [{ reason: "auth_timeout" }, c.auth_timeouts],
      [{ reason: "legacy" }, c.legacy_refused],
    ],
  );
  w.single(
    "proxy_admin_unauthorized_total",
    "counter",
    "POST /reload refused for want of an admin token.",
    info.adminUnauthorized ?? 0,
  );
  w.single(
    "proxy_received_bytes_total",
    "counter",
    "Bytes read from clients.",
    stats.bytes.received,
  );
  w.single("proxy_sent_bytes_total", "counter", "Bytes written to clients.", stats.bytes.sent);

  // Upstreams.
  const ups = stats.upstreams;
  w.series(
    "proxy_upstream_up",
    "gauge",
    "1 when an upstream takes requests (healthy), else 0.",
    ups.map((u) => [{ upstream: u.address }, u.state === "healthy" ? 1 : 0]),
  );
  w.series(
    "proxy_upstream_state",
    "gauge",
    "An upstream's state (1 for the state it is in).",
    ups.flatMap((u) =>
      UPSTREAM_STATES.map((state): [Labels, number] => [
        { upstream: u.address, state },
        u.state === state ? 1 : 0,
      ])
    ),
  );
  w.series(
    "proxy_upstream_in_flight",
    "gauge",
    "Requests in flight at an upstream.",
    ups.map((u) => [{ upstream: u.address }, u.in_flight]),
  );
  w.series(
    "proxy_upstream_requests_total",
    "counter",
    "Requests an upstream answered.",
    ups.map((u) => [{ upstream: u.address }, u.served]),
  );
  w.series(
    "proxy_upstream_failures_total",
    "counter",
    "Transport failures at an upstream.",
    ups.map((u) => [{ upstream: u.address }, u.failures]),
  );
  w.series(
    "proxy_upstream_ejections_total",
    "counter",
    "Times an upstream was ejected as an outlier.",
    ups.map((u) => [{ upstream: u.address }, u.ejections]),
  );
  return w.text();
}
