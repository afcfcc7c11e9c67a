/**
 * The npm package (`deno task npm`) built for a test and laid out as npm
 * installs it, without npm or the network:
 *
 * ```
 * <tmp>/project/deno.json                      broken: must be read by nobody
 * <tmp>/project/node_modules/proxy/            the package
 * <tmp>/project/node_modules/proxy/node_modules/deno/deno -> this test's deno
 * ```
 *
 * A module in `<tmp>/project` can `import "proxy/client"`; `bin` is the
 * `proxy` command. `scripts/npm_smoke.sh` checks the real `npm pack` and
 * `npm i -g` (with the `deno` package from the registry) in `.ci/run`.
 *
 * @module
 */

import { buildNpmPackage, type NpmPackage } from "../../scripts/npm/build.ts";
import { tempDir } from "./process.ts";

/** A built package; dispose it to remove it. */
export interface TestPackage extends AsyncDisposable {
  /** What was built; `built.dir` is the package's directory. */
  built: NpmPackage;
  /** The `proxy` command (run it with `node`). */
  bin: string;
  /** A directory whose `node_modules` holds the package. */
  project: string;
}

/** Builds the npm package into a temporary project. */
export async function buildTestPackage(): Promise<TestPackage> {
  const dir = await tempDir();
  try {
    const project = dir.join("project");
    await Deno.mkdir(project);
    await Deno.writeTextFile(`${project}/deno.json`, "{ not json");
    const built = await buildNpmPackage({ outDir: `${project}/node_modules/proxy` });
    const deno = `${built.dir}/node_modules/deno`;
    await Deno.mkdir(deno, { recursive: true });
    await Deno.writeTextFile(`${deno}/package.json`, '{ "name": "deno", "version": "0.0.0" }');
    await Deno.symlink(Deno.execPath(), `${deno}/deno`);
    return {
      built,
      bin: `${built.dir}/bin/proxy.cjs`,
      project,
      [Symbol.asyncDispose]: dir[Symbol.asyncDispose],
    };
  } catch (err) {
    await dir[Symbol.asyncDispose]();
    throw err;
  }
}
