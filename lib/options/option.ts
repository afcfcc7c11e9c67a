/**
 * One option of a command: its flag, its key in the library's options object
 * and in a config file, its default, how its text is parsed and its value
 * checked, and how its default is written in `--help` and the README. The
 * tables of options (one per command) are the single source of defaults for
 * the library, the CLI, the config file and the documentation.
 *
 * @module
 */

import { ProxyError } from "../protocol/errors.ts";

/** Code of {@linkcode OptionError}. */
export const INVALID_OPTION = "INVALID_OPTION";

/**
 * A value that does not fit its option; the CLI turns it into exit code 2.
 *
 * @example A value out of range
 * ```ts
 * import assert from "node:assert/strict";
 * import { OptionError } from "./option.ts";
 * import { runProxy } from "../proxy/run_proxy.ts";
 *
 * const err = await runProxy({ queueSize: -1 }).catch((e) => e);
 * assert.ok(err instanceof OptionError);
 * assert.equal(err.flag, "--queue-size");
 * assert.equal(err.code, "INVALID_OPTION");
 * ```
 */
export class OptionError extends ProxyError {
  /** The option's flag, e.g. `--queue-size`. */
  readonly flag: string;

  /**
   * Creates the error.
   *
   * @param flag The option's flag.
   * @param message What is wrong, e.g. `expected an integer from 1 to 10, got "x"`.
   */
  constructor(flag: string, message: string) {
    super(INVALID_OPTION, `${flag}: ${message}`);
    this.name = "OptionError";
    this.flag = flag;
  }
}

/** An option of a command. */
export interface Option<T = unknown> {
  /** The flag's name without dashes, e.g. `queue-size`. */
  readonly name: string;
  /** The key in the options object, e.g. `queueSize`. */
  readonly key: string;
  /** The key in a config file, e.g. `queue_size`; null for a flag a file cannot set (`--config`). */
  readonly configKey: string | null;
  /** The placeholder of its value in `--help`, e.g. `n`; null for a switch. */
  readonly arg: string | null;
  /** True when the value may be left out (`--flag` alone, or `--flag=value`). */
  readonly optionalArg: boolean;
  /** One line of help. */
  readonly help: string;
  /** The default; undefined when there is none. */
  readonly default: T | undefined;
  /** The default as `--help` and the README write it, e.g. `10s`, `4MiB`. */
  readonly defaultText: string;
  /** True when the flag may be given several times (values accumulate). */
  readonly repeatable: boolean;
  /** Parses the flag's text (and, when repeatable, adds to `previous`). */
  parse(text: string, previous?: T): T;
  /** Checks a value given by a program or a config file; returns it normalised. */
  check(value: unknown): T;
}

/** What every option constructor takes. */
export interface OptionInit<T> {
  /** The flag's name without dashes. */
  name: string;
  /** One line of help. */
  help: string;
  /** The default. */
  default?: T;
  /** The default as written when it is not the formatted value (e.g. "number of CPUs"). */
  defaultText?: string;
  /** The key in the options object. @default {the name in camelCase} */
  key?: string;
  /** The value's placeholder in `--help`. */
  arg?: string;
  /** True for a flag a config file cannot set (e.g. `--config` itself). @default {false} */
  cliOnly?: boolean;
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function make<T>(
  init: OptionInit<T>,
  arg: string | null,
  format: (v: T) => string,
  parse: (text: string, previous?: T) => T,
  check: (value: unknown) => T,
  repeatable = false,
  optionalArg = false,
): Option<T> {
  const flag = `--${init.name}`;
  const wrap = <A extends unknown[]>(fn: (...args: A) => T) => (...args: A): T => {
    try {
      return fn(...args);
    } catch (err) {
      if (err instanceof OptionError) throw err;
      throw new OptionError(flag, (err as Error).message);
    }
  };
  return {
    name: init.name,
    key: init.key ?? camel(init.name),
    configKey: init.cliOnly ? null : init.name.replaceAll("-", "_"),
    arg: init.arg ?? arg,
    optionalArg,
    help: init.help,
    default: init.default,
    defaultText: init.defaultText ?? (init.default === undefined ? "" : format(init.default)),
    repeatable,
    parse: wrap(parse),
    check: wrap(check),
  };
}

function formatInt(n: number): string {
  return String(n);
}

function checkInt(v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`expected an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v !== null && typeof v === "object") {
    try {
      return Array.isArray(v) ? JSON.stringify(v) : `a table ${JSON.stringify(v)}`;
    } catch {
      // a cycle: fall through
    }
  }
  return String(v);
}

/** An integer within [min, max]. */
export function intOption(
  init: OptionInit<number> & { min: number; max?: number },
): Option<number> {
  const max = init.max ?? Number.MAX_SAFE_INTEGER;
  return make(init, "n", formatInt, (text) => {
    const n = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < init.min || n > max) {
      throw new RangeError(`expected an integer from ${init.min} to ${max}, got "${text}"`);
    }
    return n;
  }, (v) => checkInt(v, init.min, max));
}

/** A number (a fraction allowed) within [min, max], or exactly one of `also`. */
export function numberOption(
  init: OptionInit<number> & { min: number; max: number; also?: readonly number[] },
): Option<number> {
  const range = () =>
    `expected a number from ${init.min} to ${init.max}${
      init.also?.length ? ` (or ${init.also.join(", ")})` : ""
    }`;
  const check = (v: unknown) => {
    const ok = typeof v === "number" && Number.isFinite(v) &&
      ((v >= init.min && v <= init.max) || (init.also ?? []).includes(v));
    if (!ok) throw new RangeError(`${range()}, got ${describe(v)}`);
    return v as number;
  };
  return make(init, "x", (v) => String(v), (text) => {
    const n = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
    if (Number.isNaN(n)) throw new RangeError(`${range()}, got "${text}"`);
    return check(n);
  }, check);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The longest duration a timer can wait: setTimeout's limit, about 24.8 days. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Parses a duration: `250ms`, `10s`, `2m`, `1h`, or a bare number (of
 * `bareUnit`). Returns milliseconds.
 *
 * @throws {RangeError} When the text is not a duration.
 */
export function parseDuration(text: string, bareUnit: "ms" | "s" = "ms"): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new RangeError(`expected a duration such as 500ms, 10s or 2m, got "${text}"`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? bareUnit]!);
}

/**
 * Writes milliseconds the way a person does: `10s`, `500ms`, `2m`, `1h`,
 * `1.5s`.
 *
 * @example Usage
 * ```ts
 * import { formatDuration } from "./option.ts";
 * console.log(formatDuration(10_000), formatDuration(250), formatDuration(90_000)); // 10s 250ms 90s
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  if (ms >= 1000 && (ms * 10) % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A duration in milliseconds within [min, max]; text takes ms, s, m, h. */
export function durationOption(
  init: OptionInit<number> & { min?: number; max?: number; bareUnit?: "ms" | "s" },
): Option<number> {
  const min = init.min ?? 0;
  const max = init.max ?? MAX_DURATION_MS;
  const range = () => `from ${formatDuration(min)} to ${formatDuration(max)}`;
  const check = (v: unknown) => {
    if (typeof v === "string") v = parseDuration(v, init.bareUnit);
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      throw new RangeError(`expected a duration ${range()}, got ${describe(v)}`);
    }
    return Math.round(v);
  };
  return make(init, "duration", formatDuration, (text) => {
    const ms = parseDuration(text, init.bareUnit);
    if (ms < min || ms > max) {
      throw new RangeError(`expected a duration ${range()}, got "${text}"`);
    }
    return ms;
  }, check);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a size in bytes: `1048576`, `512k`, `8MiB`, `1g` (powers of 1024).
 *
 * @throws {RangeError} When the text is not a size.
 */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const mult = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && mult ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`expected a size such as 65536, 512k or 8MiB, got "${text}"`);
  }
  return n;
}

/**
 * Writes a size the way a person does: `4MiB`, `64KiB`, `1000`.
 *
 * @example Usage
 * ```ts
 * import { formatSize } from "./option.ts";
 * console.log(formatSize(4 * 1024 * 1024), formatSize(1000)); // 4MiB 1000
 * ```
 */
export function formatSize(n: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

/** A size in bytes within [min, max]; text takes k, m, g (or KiB, MiB, GiB). */
export function sizeOption(
  init: OptionInit<number> & { min: number; max: number },
): Option<number> {
  const range = () => `from ${formatSize(init.min)} to ${formatSize(init.max)}`;
  const check = (v: unknown) => {
    if (typeof v === "string") v = parseSize(v);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < init.min || v > init.max) {
      throw new RangeError(`expected a size ${range()}, got ${describe(v)}`);
    }
    return v;
  };
  return make(init, "bytes", formatSize, (text) => check(parseSize(text)), check);
}

/** One of a fixed set of words. */
export function choiceOption<T extends string>(
  init: OptionInit<T> & { choices: readonly T[] },
): Option<T> {
  const check = (v: unknown) => {
    if (typeof v !== "string" || !(init.choices as readonly string[]).includes(v)) {
      throw new RangeError(`expected one of ${init.choices.join(", ")}, got ${describe(v)}`);
    }
    return v as T;
  };
  return make(init, init.choices.join("|"), (v) => v, check, check);
}

/** Any text (validated by `validate` when given). */
export function stringOption(
  init: OptionInit<string> & { validate?: (text: string) => void },
): Option<string> {
  const check = (v: unknown) => {
    if (typeof v !== "string") throw new RangeError(`expected text, got ${describe(v)}`);
    init.validate?.(v);
    return v;
  };
  return make(init, "text", (v) => v, check, check);
}

/** A switch: present means true. */
export function switchOption(init: OptionInit<boolean>): Option<boolean> {
  const check = (v: unknown) => {
    if (typeof v !== "boolean") throw new RangeError(`expected true or false, got ${describe(v)}`);
    return v;
  };
  return make(
    { ...init, default: init.default ?? false, defaultText: init.defaultText ?? "off" },
    null,
    (v) => v ? "on" : "off",
    () => true,
    check,
  );
}

/** A repeatable text flag (each use adds one); a config file gives a list. */
export function repeatOption(
  init: OptionInit<string[]> & { validate?: (text: string) => void },
): Option<string[]> {
  const check = (v: unknown) => {
    const list = typeof v === "string" ? [v] : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
      throw new RangeError(`expected a list of text, got ${describe(v)}`);
    }
    for (const x of list) init.validate?.(x);
    return [...list] as string[];
  };
  return make(
    { ...init, default: init.default ?? [], defaultText: init.defaultText ?? "" },
    "text",
    (v) => v.join(", "),
    (text, previous) => [...(previous ?? []), ...check(text)],
    check,
    true,
  );
}

/** A comma-separated list of words (`a,b,c`). */
export function listOption(init: OptionInit<string[]>): Option<string[]> {
  const check = (v: unknown) => {
    const list = typeof v === "string" ? v.split(",").map((s) => s.trim()).filter(Boolean) : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string" && x !== "")) {
      throw new RangeError(`expected comma-separated names, got ${describe(v)}`);
    }
    if (typeof v === "string" && list.length === 0) {
      throw new RangeError(`expected comma-separated names, got "${v}"`);
    }
    return [...list] as string[];
  };
  return make(
    { ...init, default: init.default ?? [], defaultText: init.defaultText ?? "" },
    "a,b",
    (v) => v.join(","),
    (text) => check(text),
    check,
  );
}

/** Repeatable `NAME=DURATION` pairs, as a record of milliseconds. */
export function durationMapOption(
  init: OptionInit<Record<string, number>> & { max?: number },
): Option<Record<string, number>> {
  const max = init.max ?? MAX_DURATION_MS;
  const one = (v: unknown) => {
    const ms = typeof v === "string" ? parseDuration(v) : v;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > max) {
      throw new RangeError(`expected a duration up to ${formatDuration(max)}, got ${describe(v)}`);
    }
    return Math.round(ms);
  };
  const check = (v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new RangeError(`expected a table of NAME = duration, got ${describe(v)}`);
    }
    const out: Record<string, number> = {};
    for (const [k, x] of Object.entries(v)) out[k] = one(x);
    return out;
  };
  return make(
    { ...init, default: init.default ?? {}, defaultText: init.defaultText ?? "" },
    "name=duration",
    (v) => Object.entries(v).map(([k, ms]) => `${k}=${formatDuration(ms)}`).join(", "),
    (text, previous) => {
      const eq = text.indexOf("=");
      if (eq <= 0) throw new RangeError(`expected NAME=DURATION, got "${text}"`);
      return { ...previous, [text.slice(0, eq)]: one(text.slice(eq + 1)) };
    },
    check,
    true,
  );
}

/**
 * A grant: `false` (none), `true` (everything) or a list of what is granted.
 * Deno's `--allow-*` flags take the same shape.
 */
export type Grant = boolean | string[];

/**
 * A flag like Deno's `--allow-net[=a,b]`: alone it grants everything, with a
 * comma-separated list it grants what is listed (repeatable; lists add up,
 * everything wins). A config file gives `true` or a list.
 */
export function grantOption(init: OptionInit<Grant>): Option<Grant> {
  const split = (text: string) => text.split(",").map((s) => s.trim()).filter(Boolean);
  const check = (v: unknown): Grant => {
    if (typeof v === "boolean") return v;
    const list = typeof v === "string" ? split(v) : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string" && x !== "")) {
      throw new RangeError(`expected true or a list of names, got ${describe(v)}`);
    }
    return [...list] as string[];
  };
  return make(
    { ...init, default: init.default ?? false, defaultText: init.defaultText ?? "off" },
    "list",
    (v) => v === true ? "on" : v === false ? "off" : v.join(","),
    (text, previous) => {
      const list = split(text);
      if (list.length === 0) throw new RangeError(`expected a comma-separated list, got "${text}"`);
      return previous === true ? true : [...(Array.isArray(previous) ? previous : []), ...list];
    },
    check,
    true,
    true,
  );
}

/** A table of options, by key. */
export type OptionTable = readonly Option[];

/**
 * Fills `given` up from the table's defaults and checks every value given,
 * once; the result is frozen.
 *
 * @param table The command's options.
 * @param given Values set by a program, a config file or flags; `undefined` means unset.
 * @returns Every option's value (undefined only for those without a default).
 * @throws {OptionError} For a value that does not fit its option.
 */
export function resolveOptions(
  table: OptionTable,
  given: Readonly<Record<string, unknown>>,
): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const option of table) {
    const v = given[option.key];
    out[option.key] = v === undefined ? option.default : option.check(v);
  }
  return Object.freeze(out);
}
