/**
 * The README's flag tables are the option tables' (run `deno task docs`).
 */

import assert from "node:assert/strict";
import { renderReadme, renderSettingsDocs, SETTINGS_DOCS } from "../scripts/docs.ts";
import { REPO_ROOT } from "./helpers/process.ts";

// deno fmt aligns table columns its own way: compare cell by cell.
function cells(markdown: string): string[] {
  return markdown.split("\n").map((l) =>
    l.trim().startsWith("|")
      ? l.split(/(?<!\\)\|/).map((c) => c.trim().replace(/^-+$/, "-")).join("|")
      : l
  );
}

Deno.test("the README's serve and backend flag tables come from the option tables", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  assert.deepEqual(cells(readme), cells(renderReadme(readme)), "run `deno task docs`");
});

Deno.test("each field of ServeSettings and BackendSettings is documented from its option", async () => {
  for (const { file, name, table } of SETTINGS_DOCS) {
    const text = await Deno.readTextFile(`${REPO_ROOT}/${file}`);
    assert.equal(text, renderSettingsDocs(text, name, table), `${file}: run \`deno task docs\``);
    for (const option of table) {
      assert.ok(
        text.includes(`\`--${option.name}\`: `),
        `${name} has a field for --${option.name}`,
      );
    }
  }
});
