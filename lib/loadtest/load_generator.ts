/**
 * The load generator of `proxy test`: many connections, each keeping up to
 * `pipeline` requests in flight, either as fast as answers come back (closed
 * loop) or on a fixed schedule (open loop, `rate`). Every answer is checked:
 * its msgid must be one in flight on that connection, and an `echo` must
 * return exactly the bytes sent.
 *
 * Requests are encoded once per connection and only their msgid (and the
 * first payload bytes, which carry the msgid too) change, so a fast target is
 * not hidden behind a slow generator.
 *
 * @module
 */

import { type Address, connect as connectAddress, formatAddress } from "../net/address.ts";
import { FrameConnection } from "../net/frame_connection.ts";
import { PendingTable } from "../net/pending_table.ts";
import {
  createEnvelope,
  decodeMessage,
  encodeRequest,
  encodeValue,
  type Envelope,
  ErrorCode,
  ProxyError,
  readEnvelope,
  REQUEST,
  RESPONSE,
  toWireError,
} from "../protocol/mod.ts";
import { LatencyHistogram } from "./latency_histogram.ts";
import { mainShare, type MixEntry } from "./request_mix.ts";

/** Codes the generator itself gives to wrong answers. */
export const CheckCode = {
  /** An answer whose msgid is not in flight on its connection (never sent, or answered twice). */
  BAD_MSGID: "BAD_MSGID",
  /** An `echo` answer whose result differs from the payload sent. */
  PAYLOAD_MISMATCH: "PAYLOAD_MISMATCH",
  /** A message that is not a valid MessagePack-RPC response. */
  INVALID_RESPONSE: "INVALID_RESPONSE",
} as const;

/** Options of {@linkcode LoadGenerator}. */
export interface LoadGeneratorOptions {
  /** The server to load. */
  address: Address;
  /** Connections opened. @default {16} */
  connections?: number;
  /** Requests in flight per connection. @default {1} */
  pipeline?: number;
  /** Milliseconds of measured load (after the warm-up). */
  durationMs: number;
  /** Milliseconds of load before measuring starts. @default {0} */
  warmupMs?: number;
  /** Milliseconds to wait, after the last request is sent, for answers still due. @default {5000} */
  graceMs?: number;
  /** The method called. @default {"echo"} */
  method?: string;
  /**
   * Its params. When absent, the params are `[payload]`: `payloadBytes`
   * random bytes, which an `echo` must send back unchanged.
   */
  params?: unknown[];
  /** Size of the random payload. @default {64} */
  payloadBytes?: number;
  /**
   * Requests per second over all connections, sent on a fixed schedule
   * (open loop): a request held back because its connection already had
   * `pipeline` requests unanswered has its latency measured from the time it
   * was due, so a stalled server cannot hide its stall by delaying the
   * requests (coordinated omission).
   * When absent, each connection sends a request as soon as it has fewer
   * than `pipeline` in flight (closed loop).
   */
  rate?: number;
  /**
   * Other requests mixed in, each with its share of all requests (chosen at
   * random per request); the main request (`method`) gets the rest.
   * Latencies are then also reported per method.
   */
  mix?: MixEntry[];
  /** Random numbers in [0, 1) that pick each request of the mix. @default {Math.random} */
  random?: () => number;
  /** Largest answer accepted. @default {8388608} */
  maxMessageSize?: number;
  /** Deepest nesting decoded in answers. @default {512} */
  maxDepth?: number;
  /** Stops sending early; answers still due get the grace period. */
  signal?: AbortSignal;
  /** Opens a connection. @default {connect from lib/net/address.ts} */
  connect?: (address: Address) => Promise<Deno.Conn>;
}

/** The measurements of one method of a mix. */
export interface MethodResult {
  /** The method. */
  method: string;
  /** Its params, for a method of the mix (absent for the main request). */
  params?: unknown[];
  /** Its share of the requests, as asked (0 to 1). */
  share: number;
  /** Measured requests of this method answered. */
  requests: number;
  /** Of those, the ones answered successfully. */
  succeeded: number;
  /** Their latencies. */
  histogram: LatencyHistogram;
}

/** What {@linkcode LoadGenerator.run} measured. */
export interface LoadResult {
  /** Requests sent after the warm-up and answered (successfully or with an error). */
  requests: number;
  /** Of those, the ones answered successfully (and correctly). */
  succeeded: number;
  /** Requests sent in all, warm-up included. */
  sent: number;
  /**
   * Requests sent after the warm-up (answered or not); in open loop, those
   * due in the measured time that were sent, to compare with the rate asked.
   */
  measuredSent: number;
  /**
   * Open loop: the share (0 to 1) of the measured time in which connections
   * held a due request back because they already had `pipeline` unanswered;
   * near 1 when the target answers too slowly for the rate. 0 in closed loop.
   */
  heldShare: number;
  /**
   * Wrong or error answers by code, warm-up included: a fault is never
   * hidden by the warm-up.
   */
  errors: Record<string, number>;
  /** Requests never answered: still due after the grace period, or lost with their connection. */
  unanswered: number;
  /** Connections the server closed during the run. */
  connectionDrops: number;
  /** Milliseconds of measured sending (shorter than asked when stopped early). */
  durationMs: number;
  /** Latency of each measured answer. */
  histogram: LatencyHistogram;
  /** True when stopped early by the signal. */
  aborted: boolean;
  /** With a mix: the main request first, then each method of the mix. */
  byMethod?: MethodResult[];
}

// A request of the mix, encoded once for all connections.
interface MixKind {
  template: Uint8Array;
  tail: number;
  upTo: number; // picked when random() < upTo (cumulative share)
}

// What the connections share with the generator.
interface Run {
  sending: boolean;
  finished: boolean;
  t0: number;
  measureStart: number;
  sendEnd: number;
  pipeline: number;
  interval: number; // ms between requests of one connection (rate mode), else 0
  connections: number;
  outstanding: number;
  sent: number;
  measuredSent: number;
  heldMs: number; // rate mode: connection-milliseconds with a due request held back, measured
  answered: number;
  requests: number;
  succeeded: number;
  unanswered: number;
  drops: number;
  errorCount: number;
  errors: Map<string, number>;
  histogram: LatencyHistogram;
  mix: MixKind[]; // kinds 1..n; kind 0 is the main request
  random: () => number;
  byMethod: MethodResult[]; // by kind, when there is a mix
  maxMessageSize: number | undefined;
  maxDepth: number | undefined;
  address: Address;
  connect: (address: Address) => Promise<Deno.Conn>;
  onSettled: () => void;
}

function countError(run: Run, code: string): void {
  run.errors.set(code, (run.errors.get(code) ?? 0) + 1);
  run.errorCount++;
}

/** One connection of the load: its request template and the msgids in flight. */
class LoadConnection {
  readonly #run: Run;
  readonly #index: number;
  readonly #template: Uint8Array;
  readonly #tail: number;
  readonly #check: boolean;
  readonly #payloadBytes: number;
  readonly #payloadAt: number; // offset of the payload bytes in the template
  readonly #expected: Uint8Array; // the payload's encoding, as the result must be
  readonly #idBytes: number;
  // msgid -> when sent (or due) and which request of the mix (0: the main one)
  readonly #pending = new PendingTable<{ at: number; kind: number }>();
  readonly #envelope: Envelope = createEnvelope();
  #conn: FrameConnection | null = null;
  #nextDue = 0; // rate mode: index of the next scheduled request
  #fullSince = -1; // rate mode: since when requests due have been held back by the cap
  #fullAt = -1; // rate mode: when the connection last reached its cap

  constructor(
    run: Run,
    index: number,
    method: string,
    params: unknown[] | undefined,
    payloadBytes: number,
  ) {
    this.#run = run;
    this.#index = index;
    if (params === undefined) {
      const payload = randomBytes(payloadBytes);
      this.#template = encodeRequest(0, method, [payload]);
      this.#expected = this.#template.subarray(this.#template.length - encodeValue(payload).length);
      this.#check = method === "echo";
      this.#payloadBytes = payloadBytes;
    } else {
      this.#template = encodeRequest(0, method, params);
      // An echo of given params must come back as they were sent, byte for
      // byte: the codec writes every value in its one canonical form.
      const echoed = method === "echo" && params.length > 0;
      this.#expected = echoed ? encodeValue(params[0]) : new Uint8Array(0);
      this.#check = echoed;
      this.#payloadBytes = 0;
    }
    this.#payloadAt = this.#template.length - this.#payloadBytes;
    this.#idBytes = Math.min(4, this.#payloadBytes);
    this.#tail = readEnvelope(this.#template, createEnvelope()).tail;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  async open(): Promise<void> {
    const raw = await this.#run.connect(this.#run.address);
    if (this.#run.finished) {
      raw.close();
      return;
    }
    const conn = new FrameConnection(raw, {
      onFrame: (frame) => this.#onFrame(frame),
      onProtocolError: (err) => countError(this.#run, err.code),
      onClose: () => this.#onClose(conn),
      ...(this.#run.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#run.maxMessageSize }),
    });
    this.#conn = conn;
    conn.run().catch(() => conn.close());
  }

  close(): void {
    this.#conn?.close();
  }

  /**
   * Sends what may be sent now: up to `pipeline` in flight, and in rate mode
   * only what is due. `blockedSince` is when this connection last filled up
   * to its cap, if an answer has just freed it: requests due since then were
   * held back by the server, so their latency counts from when they were due
   * (or from when the cap was reached); the lateness of the timer alone is
   * not counted.
   */
  fill(now: number, blockedSince = -1): void {
    const run = this.#run;
    if (!run.sending || this.#conn === null || this.#conn.closed) return;
    if (run.interval === 0) {
      while (this.#pending.size < run.pipeline) this.#send(now);
      return;
    }
    if (this.#pending.size >= run.pipeline) return;
    while (this.#pending.size < run.pipeline) {
      const due = run.t0 + (this.#nextDue + this.#index / run.connections) * run.interval;
      if (due > now || due >= run.sendEnd) return;
      this.#nextDue++;
      this.#send(blockedSince >= 0 ? Math.max(due, blockedSince) : now);
    }
    // Full now; when the backlog refilled it, it has been held back since blockedSince.
    this.#fullSince = blockedSince >= 0 ? blockedSince : now;
    this.#fullAt = now;
  }

  #send(at: number): void {
    const run = this.#run;
    const kind = run.mix.length === 0 ? 0 : this.#pickKind();
    const id = this.#pending.add({ at, kind });
    run.outstanding++;
    run.sent++;
    if (at >= run.measureStart) run.measuredSent++;
    if (kind > 0) {
      const mixed = run.mix[kind - 1]!;
      this.#conn!.writeWithMsgid(REQUEST, id, mixed.template, mixed.tail);
      return;
    }
    const t = this.#template;
    // The msgid travels in the payload too, so an answer meant for another
    // request of this connection is caught as a mismatch.
    for (let j = 0; j < this.#idBytes; j++) t[this.#payloadAt + j] = (id >>> (8 * j)) & 0xff;
    this.#conn!.writeWithMsgid(REQUEST, id, t, this.#tail);
  }

  #pickKind(): number {
    const r = this.#run.random();
    const mix = this.#run.mix;
    for (let k = 0; k < mix.length; k++) if (r < mix[k]!.upTo) return k + 1;
    return 0;
  }

  #onFrame(frame: Uint8Array): void {
    const run = this.#run;
    const env = this.#envelope;
    try {
      readEnvelope(frame, env);
    } catch {
      countError(run, CheckCode.INVALID_RESPONSE);
      return;
    }
    if (env.type !== RESPONSE) {
      countError(run, CheckCode.INVALID_RESPONSE);
      return;
    }
    const msgid = env.msgid;
    const wasFull = this.#pending.size >= run.pipeline;
    const sent = this.#pending.take(msgid);
    if (sent === undefined) {
      countError(run, CheckCode.BAD_MSGID);
      return;
    }
    const blockedSince = wasFull ? this.#fullSince : -1;
    const sentAt = sent.at;
    const kind = sent.kind;
    run.outstanding--;
    run.answered++;
    const now = performance.now();
    if (wasFull && run.interval > 0 && run.sending) this.#countHeld(now);
    const code = kind === 0 ? this.#verify(frame, env.tail, msgid) : frame[env.tail] === 0xc0 // error slot nil: the answer of a mixed request is not compared
      ? null
      : this.#verifySlowly(frame, msgid, false);
    if (code !== null) countError(run, code);
    if (sentAt >= run.measureStart) {
      run.requests++;
      if (code === null) run.succeeded++;
      run.histogram.record(now - sentAt);
      if (run.mix.length > 0) {
        const m = run.byMethod[kind]!;
        m.requests++;
        if (code === null) m.succeeded++;
        m.histogram.record(now - sentAt);
      }
    }
    if (run.sending) this.fill(now, blockedSince);
    else if (run.outstanding === 0) run.onSettled();
  }

  /** Rate mode, when sending stops: counts what this connection has held back until then. */
  endHeldPeriod(end: number): void {
    if (this.#run.interval > 0 && this.#pending.size >= this.#run.pipeline) this.#countHeld(end);
  }

  // The connection was full from #fullAt to `to`; requests were held back
  // from the first due time in that span (the schedule stood still meanwhile).
  #countHeld(to: number): void {
    const run = this.#run;
    const due = run.t0 + (this.#nextDue + this.#index / run.connections) * run.interval;
    const from = Math.max(this.#fullAt, due, run.measureStart);
    run.heldMs += Math.max(0, Math.min(to, run.sendEnd) - from);
  }

  // null when the answer is right, else the code to count it under.
  #verify(frame: Uint8Array, tail: number, msgid: number): string | null {
    if (frame[tail] !== 0xc0) return this.#verifySlowly(frame, msgid); // error slot not nil
    if (!this.#check) return null;
    // Fast path: the result is encoded exactly as the payload was.
    const start = tail + 1;
    const expected = this.#expected;
    if (frame.length - start !== expected.length) return this.#verifySlowly(frame, msgid);
    const head = expected.length - this.#payloadBytes;
    for (let i = 0; i < head; i++) {
      if (frame[start + i] !== expected[i]) return this.#verifySlowly(frame, msgid);
    }
    const p = start + head;
    for (let j = 0; j < this.#idBytes; j++) {
      if (frame[p + j] !== ((msgid >>> (8 * j)) & 0xff)) return CheckCode.PAYLOAD_MISMATCH;
    }
    for (let j = this.#idBytes; j < this.#payloadBytes; j++) {
      if (frame[p + j] !== expected[head + j]) return CheckCode.PAYLOAD_MISMATCH;
    }
    return null;
  }

  // Decodes the whole answer: an error's code, or a result encoded
  // differently (but equal) from how we encoded the payload.
  #verifySlowly(frame: Uint8Array, msgid: number, check = this.#check): string | null {
    let msg;
    try {
      msg = decodeMessage(
        frame,
        this.#run.maxDepth === undefined ? {} : { maxDepth: this.#run.maxDepth },
      );
    } catch {
      return CheckCode.INVALID_RESPONSE;
    }
    if (msg.type !== RESPONSE) return CheckCode.INVALID_RESPONSE;
    if (msg.error !== null && msg.error !== undefined) return toWireError(msg.error).code;
    if (!check) return null;
    // Given params: only the exact bytes (the fast path) are right.
    if (this.#payloadBytes === 0) return CheckCode.PAYLOAD_MISMATCH;
    const result = msg.result;
    if (!(result instanceof Uint8Array) || result.length !== this.#payloadBytes) {
      return CheckCode.PAYLOAD_MISMATCH;
    }
    const expected = this.#expected.subarray(this.#expected.length - this.#payloadBytes);
    for (let j = 0; j < this.#payloadBytes; j++) {
      const want = j < this.#idBytes ? (msgid >>> (8 * j)) & 0xff : expected[j];
      if (result[j] !== want) return CheckCode.PAYLOAD_MISMATCH;
    }
    return null;
  }

  #onClose(conn: FrameConnection): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    const run = this.#run;
    if (run.finished) return;
    // Requests in flight on a closed connection can never be answered.
    run.drops++;
    run.unanswered += this.#pending.size;
    run.outstanding -= this.#pending.size;
    this.#pending.clear();
    if (!run.sending) {
      if (run.outstanding === 0) run.onSettled();
      return;
    }
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    while (this.#run.sending) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!this.#run.sending) return;
      try {
        await this.open();
        this.fill(performance.now());
        return;
      } catch {
        // still down: try again while the run lasts
      }
    }
  }
}

function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(bytes.subarray(off, Math.min(n, off + 65536)));
  }
  return bytes;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot create load: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Generates load on one server and measures it. Use once: construct, then
 * {@linkcode LoadGenerator.run}.
 *
 * @example Usage
 * ```ts ignore
 * import { LoadGenerator } from "./load_generator.ts";
 * const gen = new LoadGenerator({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 8080 },
 *   durationMs: 2000,
 *   connections: 4,
 *   pipeline: 8,
 * });
 * const result = await gen.run();
 * console.log(result.requests, result.unanswered, result.histogram.summary().p99);
 * ```
 */
export class LoadGenerator {
  readonly #options: LoadGeneratorOptions;
  readonly #run: Run;
  readonly #conns: LoadConnection[] = [];
  #started = false;
  #sendingEnded!: () => void;
  readonly #sendingEndedPromise = new Promise<void>((resolve) => this.#sendingEnded = resolve);

  /**
   * @param options Target, shape and length of the load.
   * @throws {RangeError} On a non-positive count, duration or rate; on a mix
   * whose shares add up to more than 100 % or that repeats a method.
   */
  constructor(options: LoadGeneratorOptions) {
    this.#options = options;
    const connections = positiveInt("connections", options.connections ?? 16);
    const pipeline = positiveInt("pipeline", options.pipeline ?? 1);
    if (!(options.durationMs >= 0)) {
      throw new RangeError(
        `Cannot create load: durationMs must be 0 or more, got ${options.durationMs}`,
      );
    }
    if (options.rate !== undefined && !(options.rate > 0)) {
      throw new RangeError(`Cannot create load: rate must be positive, got ${options.rate}`);
    }
    const payloadBytes = options.payloadBytes ?? 64;
    if (!Number.isSafeInteger(payloadBytes) || payloadBytes < 0) {
      throw new RangeError(
        `Cannot create load: payloadBytes must be 0 or more, got ${payloadBytes}`,
      );
    }
    const method = options.method ?? "echo";
    const mixEntries = options.mix ?? [];
    const share = mainShare(mixEntries, method);
    const mix: MixKind[] = [];
    let upTo = 0;
    for (const entry of mixEntries) {
      const template = encodeRequest(0, entry.method, entry.params);
      upTo += entry.share;
      mix.push({ template, tail: readEnvelope(template, createEnvelope()).tail, upTo });
    }
    const byMethod: MethodResult[] = mixEntries.length === 0 ? [] : [
      { method, share, requests: 0, succeeded: 0, histogram: new LatencyHistogram() },
      ...mixEntries.map((e) => ({
        method: e.method,
        params: e.params,
        share: e.share,
        requests: 0,
        succeeded: 0,
        histogram: new LatencyHistogram(),
      })),
    ];
    this.#run = {
      sending: false,
      finished: false,
      t0: 0,
      measureStart: 0,
      sendEnd: 0,
      pipeline,
      interval: options.rate === undefined ? 0 : (1000 * connections) / options.rate,
      connections,
      outstanding: 0,
      sent: 0,
      measuredSent: 0,
      heldMs: 0,
      answered: 0,
      requests: 0,
      succeeded: 0,
      unanswered: 0,
      drops: 0,
      errorCount: 0,
      errors: new Map(),
      histogram: new LatencyHistogram(),
      mix,
      random: options.random ?? Math.random,
      byMethod,
      maxMessageSize: options.maxMessageSize,
      maxDepth: options.maxDepth,
      address: options.address,
      connect: options.connect ?? connectAddress,
      onSettled: () => {},
    };
    for (let i = 0; i < connections; i++) {
      this.#conns.push(
        new LoadConnection(this.#run, i, method, options.params, payloadBytes),
      );
    }
  }

  /** Answers received so far (all, warm-up included). */
  get answered(): number {
    return this.#run.answered;
  }

  /** Wrong or error answers so far. */
  get errorCount(): number {
    return this.#run.errorCount;
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.#run.outstanding;
  }

  /** Connections the server closed so far. */
  get connectionDrops(): number {
    return this.#run.drops;
  }

  /** Milliseconds since the load started (0 before). */
  get elapsedMs(): number {
    return this.#run.t0 === 0 ? 0 : performance.now() - this.#run.t0;
  }

  /** Resolves when the last request has been sent (answers may still be due). */
  get sendingEnded(): Promise<void> {
    return this.#sendingEndedPromise;
  }

  /**
   * Connects, loads for the warm-up plus the duration, waits up to the grace
   * period for answers still due, closes, and returns the measurements.
   *
   * @throws {ProxyError} `CONNECT_FAILED` when a connection cannot be opened at the start.
   * @throws {TypeError} When called twice.
   */
  async run(): Promise<LoadResult> {
    if (this.#started) throw new TypeError("Cannot run load: it already ran");
    this.#started = true;
    const run = this.#run;
    const options = this.#options;
    const opened = await Promise.allSettled(this.#conns.map((c) => c.open()));
    const failed = opened.find((r) => r.status === "rejected");
    if (failed) {
      run.finished = true;
      for (const c of this.#conns) c.close();
      this.#sendingEnded();
      const err = failed.reason;
      throw new ProxyError(
        ErrorCode.CONNECT_FAILED,
        `Cannot connect to ${formatAddress(options.address)}: ${
          err instanceof Error ? err.message : String(err)
        }`,
        { cause: err },
      );
    }

    const warmupMs = options.warmupMs ?? 0;
    run.t0 = performance.now();
    run.measureStart = run.t0 + warmupMs;
    run.sendEnd = run.measureStart + options.durationMs;
    run.sending = true;
    let aborted = false;
    const settled = new Promise<void>((resolve) => run.onSettled = resolve);
    const endTimer = setTimeout(() => stopSending(), warmupMs + options.durationMs);
    // Open loop: send what is due every millisecond (and on each answer).
    const ticker = run.interval > 0
      ? setInterval(() => {
        const now = performance.now();
        if (now >= run.sendEnd) return stopSending();
        for (const c of this.#conns) c.fill(now);
      }, 1)
      : undefined;
    const onAbort = () => {
      aborted = true;
      stopSending();
    };
    const stopSending = () => {
      if (!run.sending) return;
      run.sending = false;
      run.sendEnd = Math.min(run.sendEnd, performance.now());
      for (const c of this.#conns) c.endHeldPeriod(run.sendEnd);
      clearInterval(ticker);
      clearTimeout(endTimer);
      options.signal?.removeEventListener("abort", onAbort);
      this.#sendingEnded();
      if (run.outstanding === 0) run.onSettled();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    const now = performance.now();
    for (const c of this.#conns) c.fill(now);

    await this.#sendingEndedPromise;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      settled,
      new Promise<void>((resolve) => graceTimer = setTimeout(resolve, options.graceMs ?? 5000)),
    ]);
    clearTimeout(graceTimer);
    run.finished = true;
    let unanswered = run.unanswered;
    for (const c of this.#conns) {
      unanswered += c.inFlight;
      c.close();
    }
    run.outstanding = 0;
    const measuredMs = Math.max(0, run.sendEnd - run.measureStart);
    return {
      requests: run.requests,
      succeeded: run.succeeded,
      sent: run.sent,
      measuredSent: run.measuredSent,
      heldShare: measuredMs > 0 ? Math.min(1, run.heldMs / (measuredMs * run.connections)) : 0,
      errors: Object.fromEntries(run.errors),
      unanswered,
      connectionDrops: run.drops,
      durationMs: measuredMs,
      histogram: run.histogram,
      aborted,
      ...(run.byMethod.length > 0 ? { byMethod: run.byMethod } : {}),
    };
  }
}
