/**
 * The shapes of `proxy.stats`: what the dispatcher and its endpoint sets
 * report. One shape whatever the hosts are (empty lists for what is absent).
 *
 * @module
 */

/** One local worker. */
export interface WorkerStats {
  id: number;
  mode: string;
  key: string | null;
  pid: number | null;
  state: string;
  in_flight: number;
  served: number;
  restarts: number;
  rss_mb: number | null;
  unwritten_bytes: number;
  /** Microseconds of work per answer while it had requests (0 until measured). */
  pace_us: number;
  started_at: string;
}

/** A local worker that has exited, as the stats remember it. */
export interface ExitRecord {
  id: number;
  key: string | null;
  pid: number | null;
  code: number;
  signal: string | null;
  reason: string;
  at: string;
}

/** One upstream server. */
export interface UpstreamStats {
  /** `tcp:HOST:PORT` or `unix:/path`. */
  address: string;
  /** Where it came from: `static`, or the `dns:`/`srv:` name that gave it. */
  source: string;
  weight: number;
  /** `healthy`, `unhealthy`, `ejected`, `draining` or `connecting`. */
  state: string;
  in_flight: number;
  served: number;
  failures: number;
  ejections: number;
  /** Peak-EWMA latency in ms. */
  ewma_ms: number;
  /** Microseconds of work per answer while it had requests (0 until measured). */
  pace_us: number;
  /** Connections open (of those wanted). */
  connections: number;
}

/** Counters of local workers (all 0 without them). */
export interface WorkerTotals {
  spawns: number;
  crashes: number;
  worker_exits: number;
  recycles: number;
}

/** What an endpoint set reports. */
export interface SetStats {
  /** The private socket directory of local workers; null without them. */
  socket_dir: string | null;
  workers: WorkerStats[];
  past_exits: ExitRecord[];
  upstreams: UpstreamStats[];
  totals: WorkerTotals & Record<string, number>;
}
