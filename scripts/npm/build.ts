/**
 * `deno task npm`: builds the npm package in `dist/npm/` (then
 * `cd dist/npm && npm pack` makes `proxy-<version>.tgz`):
 *
 * - `proxy.js`: the program (`cli/main.ts`) bundled with its dependencies
 *   into one file, so nothing is resolved or downloaded when it runs;
 * - `bin/proxy.cjs`: the `proxy` command, a small Node script that runs
 *   `proxy.js` on the binary of the `deno` npm dependency with the flags of
 *   `deno task proxy` (`launch.json`), and passes signals on;
 * - `lib/`: the client and the codec (`client.ts`, `protocol.ts`) bundled
 *   for Node and Deno (shared code in one chunk, so an error class is one
 *   class whichever entry it comes from): `proxy/client`, `proxy/protocol`;
 * - `package.json` (name and version from `deno.json`) and `README.md`.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The `deno` npm package the package depends on: the Deno it is built and tested with. */
export const DENO_VERSION = "2.9.6";

/** The Node versions the package is tested with. */
export const NODE_ENGINES = ">=20";

const ROOT = new URL("../../", import.meta.url);

/** Options of {@linkcode buildNpmPackage}. */
export interface BuildNpmOptions {
  /** Where the package goes (emptied first). @default {"<repo>/dist/npm"} */
  outDir?: string;
}

/** What {@linkcode buildNpmPackage} built. */
export interface NpmPackage {
  /** The package's directory. */
  dir: string;
  /** `name` from `deno.json`. */
  name: string;
  /** `version` from `deno.json`. */
  version: string;
  /** The flags the `bin` gives deno before the bundle. */
  denoFlags: string[];
  /** The bundled program, relative to `dir`. */
  main: string;
}

/**
 * The flags of the `proxy` task (`deno run FLAGS cli/main.ts`), plus
 * `--no-config`: the bundle resolves nothing, and a `deno.json` in the
 * user's working directory must not be read either.
 *
 * @param task The task's command line.
 * @returns The flags between `run` and the module.
 * @throws {Error} When the task is not `deno run ... cli/main.ts`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { launchFlags } from "./build.ts";
 * assert.deepEqual(launchFlags("deno run --quiet --allow-net cli/main.ts"), [
 *   "--no-config",
 *   "--quiet",
 *   "--allow-net",
 * ]);
 * ```
 */
export function launchFlags(task: string): string[] {
  const words = task.trim().split(/\s+/);
  const main = words.indexOf("cli/main.ts");
  if (words[0] !== "deno" || words[1] !== "run" || main < 0) {
    throw new Error(
      `Cannot read the proxy task: expected "deno run ... cli/main.ts", got "${task}"`,
    );
  }
  const flags = words.slice(2, main);
  if (flags.some((f) => !f.startsWith("--"))) {
    throw new Error(`Cannot read the proxy task: a flag with a separate value in "${task}"`);
  }
  return ["--no-config", ...flags];
}

async function bundle(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", ...args],
    cwd: decodeURIComponent(ROOT.pathname),
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) {
    throw new Error(`Cannot bundle ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Builds the npm package.
 *
 * @param options Where it goes.
 * @returns What was built.
 * @throws {Error} When bundling fails.
 */
export async function buildNpmPackage(options: BuildNpmOptions = {}): Promise<NpmPackage> {
  const dir = options.outDir ?? decodeURIComponent(new URL("dist/npm", ROOT).pathname);
  await Deno.remove(dir, { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  await Deno.mkdir(`${dir}/bin`, { recursive: true });
  const main = "proxy.js";
  await bundle(["--output", `${dir}/${main}`, "cli/main.ts"]);
  await bundle(["--code-splitting", "--outdir", `${dir}/lib`, "client.ts", "protocol.ts"]);
  const denoFlags = launchFlags(denoJson.tasks.proxy);
  await Deno.writeTextFile(`${dir}/launch.json`, JSON.stringify({ main, denoFlags }, null, 2));
  await Deno.copyFile(new URL("scripts/npm/proxy.cjs", ROOT), `${dir}/bin/proxy.cjs`);
  await Deno.chmod(`${dir}/bin/proxy.cjs`, 0o755);
  await Deno.copyFile(new URL("scripts/npm/README.md", ROOT), `${dir}/README.md`);
  const pkg = {
    name: denoJson.name,
    version: denoJson.version,
    description: "A process-isolating MessagePack-RPC proxy: spreads requests over worker " +
      "processes it supervises",
    type: "module",
    bin: { proxy: "bin/proxy.cjs" },
    exports: {
      ".": "./lib/client.js",
      "./client": "./lib/client.js",
      "./protocol": "./lib/protocol.js",
      "./package.json": "./package.json",
    },
    files: ["bin/", "lib/", main, "launch.json", "README.md"],
    dependencies: { deno: DENO_VERSION },
    engines: { node: NODE_ENGINES },
    keywords: ["msgpack-rpc", "messagepack", "rpc", "proxy", "process-isolation"],
  };
  await Deno.writeTextFile(`${dir}/package.json`, `${JSON.stringify(pkg, null, 2)}\n`);
  return { dir, name: pkg.name, version: pkg.version, denoFlags, main };
}

if (import.meta.main) {
  const built = await buildNpmPackage();
  console.log(
    `${built.dir}: ${built.name} ${built.version}, bin proxy on deno ${DENO_VERSION} ` +
      `(cd ${built.dir} && npm pack)`,
  );
}
