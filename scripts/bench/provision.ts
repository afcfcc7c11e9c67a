/**
 * What the benchmark needs on the machine: HAProxy, and nginx with its
 * stream module, installed with apt-get when missing (unless told not to).
 *
 * @module
 */

import { log } from "./log.ts";

/** Runs `command` with `sh -c`; never throws. */
export async function sh(command: string): Promise<{ ok: boolean; out: string }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", command],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, out: (dec.decode(out.stdout) + dec.decode(out.stderr)).trim() };
}

async function has(cmd: string): Promise<boolean> {
  return (await sh(`command -v ${cmd}`)).ok;
}

/** apt-get install, with an `apt-get update` first if the plain install fails. */
async function aptInstall(packages: string[]): Promise<boolean> {
  log(`installing ${packages.join(" ")} with apt-get`);
  const cmd = `DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${packages.join(" ")}`;
  if ((await sh(cmd)).ok) return true;
  await sh("apt-get update -q");
  const again = await sh(cmd);
  if (!again.ok) {
    log(`cannot install ${packages.join(" ")}: ${again.out.split("\n").slice(-3).join(" | ")}`);
  }
  return again.ok;
}

/**
 * Makes sure `haproxy` is on the PATH.
 *
 * @param install Whether to apt-get install it when missing.
 * @throws {Error} When it is missing and cannot be installed.
 */
export async function ensureHaproxy(install: boolean): Promise<void> {
  if (await has("haproxy")) return;
  if (!install || !(await aptInstall(["haproxy"]))) {
    throw new Error("Cannot run the benchmark: haproxy is missing (apt-get install -y haproxy)");
  }
}

const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/**
 * The `load_module` line nginx needs for `stream {}`: `""` when the module
 * is built in, null when nginx or the module is unavailable.
 *
 * @param install Whether to apt-get install nginx and the module when missing.
 */
export async function nginxStream(install: boolean): Promise<string | null> {
  const probe = async () => {
    if (!(await has("nginx"))) return null;
    const v = await sh("nginx -V");
    if (/--with-stream(?!=dynamic)(\s|$)/.test(v.out)) return "";
    try {
      await Deno.stat(NGINX_STREAM_MODULE);
      return `load_module ${NGINX_STREAM_MODULE};`;
    } catch {
      return null;
    }
  };
  const found = await probe();
  if (found !== null || !install) return found;
  if (!(await aptInstall(["nginx", "libnginx-mod-stream"]))) return null;
  return await probe();
}
