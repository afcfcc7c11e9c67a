/**
 * An option table as the Markdown table the README shows, so the README's
 * flags, defaults and meanings come from the same table as `--help`.
 *
 * @module
 */

import type { Option, OptionTable } from "./option.ts";

/**
 * The Markdown table of `table`: flag, default, meaning.
 *
 * @example Usage
 * ```ts
 * import { optionsMarkdown } from "./markdown.ts";
 * import { intOption } from "./option.ts";
 * console.log(optionsMarkdown([intOption({ name: "workers", help: "worker processes", default: 4, min: 1 })]));
 * ```
 */
export function optionsMarkdown(table: OptionTable): string {
  // A pipe inside a cell, code spans included, must be escaped in a table.
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const rows = table.map((o) => [
    cell(`\`--${o.name}${flagArg(o)}\``),
    o.defaultText === "" ? "" : cell(`\`${o.defaultText}\``),
    cell(o.help),
  ]);
  const header = ["flag", "default", "meaning"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...rows.map(line),
  ].join("\n");
}

// How a flag's value is written: ` N`, `[=LIST]`, or nothing for a switch.
function flagArg(o: Option): string {
  if (o.arg === null) return "";
  return o.optionalArg ? `[=${o.arg.toUpperCase()}]` : ` ${o.arg.toUpperCase()}`;
}

/**
 * Replaces what stands between `<!-- options:NAME -->` and
 * `<!-- /options:NAME -->` in `text` with `table`'s Markdown.
 *
 * @throws {Error} When the markers are missing.
 */
export function replaceOptionsBlock(text: string, name: string, markdown: string): string {
  const start = `<!-- options:${name} -->`;
  const end = `<!-- /options:${name} -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`Cannot find the ${start} ... ${end} block`);
  return `${text.slice(0, a + start.length)}\n\n${markdown}\n\n${text.slice(b)}`;
}
