/**
 * The live line `proxy test` keeps rewriting on a terminal: elapsed time,
 * current rate, errors.
 *
 * @module
 */

/** What the live line reads. */
export interface ProgressSource {
  /** Answers so far. */
  readonly answered: number;
  /** Wrong or error answers so far. */
  readonly errorCount: number;
  /** Requests in flight. */
  readonly inFlight: number;
  /** Milliseconds since the load started. */
  readonly elapsedMs: number;
}

/** Options of {@linkcode LiveLine}. */
export interface LiveLineOptions {
  /** Where the numbers come from. */
  source: ProgressSource;
  /** Milliseconds the load lasts in all (warm-up included), to show progress. */
  totalMs: number;
  /** Writes text as it is (no newline added). @default {to stderr} */
  write?: (text: string) => void;
  /** Milliseconds between updates. @default {500} */
  intervalMs?: number;
  /** Source of the current time in ms. @default {performance.now} */
  now?: () => number;
}

/**
 * One progress line: `elapsed 3.0/10.0 s  rate 12,345/s  errors 0  in flight 16`.
 *
 * @param elapsedMs Time since the start.
 * @param totalMs Planned length.
 * @param rate Answers per second over the last interval.
 * @param errors Errors so far.
 * @param inFlight Requests in flight.
 */
export function formatProgress(
  elapsedMs: number,
  totalMs: number,
  rate: number,
  errors: number,
  inFlight: number,
): string {
  const sec = (n: number) => (n / 1000).toFixed(1);
  const num = (n: number) => Math.round(n).toLocaleString("en-US");
  return `elapsed ${sec(Math.min(elapsedMs, totalMs))}/${sec(totalMs)} s  rate ${
    num(rate)
  }/s  errors ${num(errors)}  in flight ${num(inFlight)}`;
}

const encoder = new TextEncoder();

/**
 * Rewrites one line (carriage return, erase line) at an interval until
 * stopped; {@linkcode LiveLine.stop} erases it so the report starts clean.
 */
export class LiveLine {
  readonly #options: LiveLineOptions;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastAt = 0;
  #lastAnswered = 0;

  /** @param options Source, length and output. */
  constructor(options: LiveLineOptions) {
    this.#options = options;
    this.#write = options.write ?? ((text) => Deno.stderr.writeSync(encoder.encode(text)));
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts updating. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#lastAt = this.#now();
    this.#lastAnswered = this.#options.source.answered;
    this.#timer = setInterval(() => this.update(), this.#options.intervalMs ?? 500);
  }

  /** Writes the line now. */
  update(): void {
    const now = this.#now();
    const s = this.#options.source;
    const answered = s.answered;
    const rate = now > this.#lastAt
      ? ((answered - this.#lastAnswered) * 1000) / (now - this.#lastAt)
      : 0;
    this.#lastAt = now;
    this.#lastAnswered = answered;
    this.#write(
      `\r\x1b[K${
        formatProgress(s.elapsedMs, this.#options.totalMs, rate, s.errorCount, s.inFlight)
      }`,
    );
  }

  /** Stops and erases the line. Idempotent. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#write("\r\x1b[K");
  }
}
