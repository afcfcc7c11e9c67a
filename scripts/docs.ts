/**
 * `deno task docs`: writes the README's flag tables, and the JSDoc of each
 * field of the library's settings (`ServeSettings`, `BackendSettings`), from
 * the option tables (`lib/options/`), the same tables `--help` and the library
 * read. The test suite checks both are in step (`tests/docs_test.ts`).
 *
 * @module
 */

import { BACKEND_OPTIONS } from "../lib/options/backend_options.ts";
import { optionsMarkdown, replaceOptionsBlock } from "../lib/options/markdown.ts";
import type { OptionTable } from "../lib/options/option.ts";
import { SERVE_OPTIONS } from "../lib/options/serve_options.ts";

/** The README's generated blocks: name -> table. */
export const README_BLOCKS = { serve: SERVE_OPTIONS, backend: BACKEND_OPTIONS };

/** The README with its flag tables written afresh. */
export function renderReadme(text: string): string {
  let out = text;
  for (const [name, table] of Object.entries(README_BLOCKS)) {
    out = replaceOptionsBlock(out, name, optionsMarkdown(table));
  }
  return out;
}

/** Settings interfaces whose fields are documented from a table. */
export const SETTINGS_DOCS: readonly { file: string; name: string; table: OptionTable }[] = [
  { file: "lib/options/serve_options.ts", name: "ServeSettings", table: SERVE_OPTIONS },
  { file: "lib/options/backend_options.ts", name: "BackendSettings", table: BACKEND_OPTIONS },
];

const WIDTH = 100;

function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent.length + 3 + line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/**
 * `text` (a source file) with the JSDoc of each field of `interface name`
 * written afresh from the option of `table` with the same key: its flag, its
 * help and its default as the CLI writes it. Other members stay as they are.
 *
 * @throws {Error} When the interface is missing.
 */
export function renderSettingsDocs(text: string, name: string, table: OptionTable): string {
  const head = `export interface ${name} `;
  const a = text.indexOf(head);
  const open = text.indexOf("{\n", a);
  const close = text.indexOf("\n}\n", open);
  if (a < 0 || open < 0 || close < 0) throw new Error(`Cannot find interface ${name}`);
  const byKey = new Map(table.map((o) => [o.key, o]));
  const out: string[] = [];
  let comment: string[] = []; // held until the member it documents is known
  let inComment = false;
  for (const line of text.slice(open + 2, close + 1).split("\n").slice(0, -1)) {
    if (inComment || line.trimStart().startsWith("/**")) {
      comment.push(line);
      inComment = !line.trimEnd().endsWith("*/");
      continue;
    }
    const field = line.match(/^(\s+)(\w+)\??:/);
    const option = field ? byKey.get(field[2]!) : undefined;
    if (field && option) {
      const indent = field[1]!;
      const defaultText = option.defaultText === "" ? "" : ` Default: \`${option.defaultText}\`.`;
      const doc = `\`--${option.name}\`: ${option.help}.${defaultText}`;
      const lines = wrap(doc, indent);
      if (lines.length === 1 && indent.length + 7 + doc.length <= WIDTH) {
        out.push(`${indent}/** ${doc} */`);
      } else out.push(`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`), `${indent} */`);
    } else out.push(...comment);
    comment = [];
    out.push(line);
  }
  return `${text.slice(0, open + 2)}${out.join("\n")}\n${text.slice(close + 1)}`;
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const path = new URL("README.md", root);
  await Deno.writeTextFile(path, renderReadme(await Deno.readTextFile(path)));
  const written = [path.pathname];
  for (const { file, name, table } of SETTINGS_DOCS) {
    const url = new URL(file, root);
    await Deno.writeTextFile(url, renderSettingsDocs(await Deno.readTextFile(url), name, table));
    written.push(url.pathname);
  }
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", ...written] }).output();
  if (!fmt.success) throw new Error(new TextDecoder().decode(fmt.stderr));
}
