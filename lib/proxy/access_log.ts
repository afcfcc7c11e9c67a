/**
 * The access log (`--access-log`): one line per sampled request, with its
 * method, routing key, the worker or upstream that served it, its outcome and
 * its latency. Off by default; when off, nothing runs per request.
 *
 * @module
 */

import type { Call } from "../dispatch/call.ts";
import type { Host } from "../dispatch/host.ts";
import type { RequestObserver } from "../dispatch/observer.ts";
import { getLogger } from "../log.ts";
import { HOST_ERROR, OK } from "../metrics/request_metrics.ts";

/** Options of {@linkcode AccessLog}. */
export interface AccessLogOptions {
  /** Share of requests logged, from 0 to 1. @default {1} */
  sample?: number;
  /** Randomness for sampling. @default {Math.random} */
  random?: () => number;
}

/** One access-log record's fields (also the JSON properties). */
export interface AccessRecord {
  method: string;
  key: string | null;
  host: string | null;
  code: string;
  latency_ms: number;
}

/** Logs sampled requests at info level in the `proxy.access` category. */
export class AccessLog implements RequestObserver {
  readonly #sample: number;
  readonly #random: () => number;
  readonly #log = getLogger(["access"]);

  /** @param options The sampling rate. */
  constructor(options: AccessLogOptions = {}) {
    this.#sample = options.sample ?? 1;
    this.#random = options.random ?? Math.random;
  }

  #write(call: Call, host: Host | null, code: string, now: number): void {
    if (this.#sample < 1 && this.#random() >= this.#sample) return;
    const record: AccessRecord = {
      method: printable(call.method),
      key: call.key === undefined ? null : printable(call.key),
      host: host === null ? null : hostName(host),
      code,
      latency_ms: call.arrivedAt > 0 ? Math.round((now - call.arrivedAt) * 1000) / 1000 : -1,
    };
    // The line reads well as text; the record's fields go along as
    // properties (the JSON log format writes them as such).
    this.#log.info(
      escapeBraces(
        `${record.method} key=${record.key ?? "-"} via=${
          record.host ?? "-"
        } code=${code} latency_ms=${record.latency_ms}`,
      ),
      record as unknown as Record<string, unknown>,
    );
  }

  /** A host answered. */
  answered(call: Call, host: Host, now: number): void {
    this.#write(call, host, call.errored ? HOST_ERROR : OK, now);
  }

  /** The proxy answered with an error of its own. */
  failed(call: Call, code: string, host: Host | null, now: number): void {
    this.#write(call, host, code, now);
  }
}

// A client's text as one short line: control characters escaped (no forged
// log lines), at most MAX_FIELD characters (no log rotated away by one request).
const MAX_FIELD = 100;
function printable(text: string): string {
  const short = text.length > MAX_FIELD ? `${text.slice(0, MAX_FIELD)}...` : text;
  return short.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

// LogTape reads `{name}` in a message as a placeholder; a client's method
// name is text, not a template.
function escapeBraces(text: string): string {
  return text.replace(/[{}]/g, (c) => c + c);
}

// `worker 3 (pid 1234)` or `tcp:10.0.0.5:9000`.
function hostName(host: Host): string {
  const pid = (host as { pid?: number | null }).pid;
  return typeof pid === "number" ? `${host.label} (pid ${pid})` : host.label;
}
