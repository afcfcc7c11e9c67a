/**
 * `deno task docs`: writes the README's flag tables from the option tables
 * (`lib/options/`), the same tables `--help` and the library read. The test
 * suite checks the README is in step (`tests/docs_test.ts`).
 *
 * @module
 */

import { BACKEND_OPTIONS } from "../lib/options/backend_options.ts";
import { optionsMarkdown, replaceOptionsBlock } from "../lib/options/markdown.ts";
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

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url);
  await Deno.writeTextFile(path, renderReadme(await Deno.readTextFile(path)));
  const fmt = await new Deno.Command(Deno.execPath(), { args: ["fmt", path.pathname] }).output();
  if (!fmt.success) throw new Error(new TextDecoder().decode(fmt.stderr));
}
