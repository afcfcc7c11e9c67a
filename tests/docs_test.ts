/**
 * The README's flag tables are the option tables' (run `deno task docs`).
 */

import assert from "node:assert/strict";
import { renderReadme, renderSettingsDocs, SETTINGS_DOCS } from "../scripts/docs.ts";
import { REPO_ROOT } from "./helpers/process.ts";
import { parseConfig } from "../lib/options/config_file.ts";
import { resolveServeSettings, SERVE_OPTIONS } from "../lib/options/serve_options.ts";

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
  // Settings interfaces extend shared ones (LogSettings, WorkerPermissionSettings) kept with their options.
  const shared = await Promise.all(
    ["lib/options/log_options.ts", "lib/options/worker_permission_options.ts"].map((f) =>
      Deno.readTextFile(`${REPO_ROOT}/${f}`)
    ),
  );
  for (const { file, name, table } of SETTINGS_DOCS) {
    const text = await Deno.readTextFile(`${REPO_ROOT}/${file}`);
    assert.equal(text, renderSettingsDocs(text, name, table), `${file}: run \`deno task docs\``);
    for (const option of table) {
      assert.ok(
        [text, ...shared].some((t) => t.includes(`\`--${option.name}\`: `)),
        `${name} has a field for --${option.name}`,
      );
    }
  }
});

Deno.test("the README's example config file is valid", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const blocks = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length > 0, "a ```toml block in the README");
  for (const text of blocks) {
    const values = parseConfig(text, "README.md", SERVE_OPTIONS);
    assert.ok(Object.keys(values).length > 5);
    // The rules that tie options together hold too (files named need not exist here).
    resolveServeSettings(values);
  }
});
