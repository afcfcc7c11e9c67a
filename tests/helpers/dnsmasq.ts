/**
 * Debian's dnsmasq as a real DNS server for tests: on a free loopback port,
 * answering from a hosts file (with a TTL of 1 s) that it reads again on
 * SIGHUP.
 *
 * @module
 */

import { type ProgramProcess, spawnCommand } from "./process.ts";

/** A running dnsmasq; dispose it (`await using`). */
export interface TestDns extends AsyncDisposable {
  /** The process. */
  proc: ProgramProcess;
  /** `127.0.0.1:PORT`, for `--dns-server`. */
  server: string;
  /** Replaces the hosts file and waits until dnsmasq has read it. */
  setHosts(text: string): Promise<void>;
}

/**
 * Starts dnsmasq in `dir` answering from `hosts` (a hosts file's text).
 *
 * @param extra More dnsmasq flags (e.g. `--srv-host=...`).
 */
export async function dnsmasq(dir: string, hosts: string, extra: string[] = []): Promise<TestDns> {
  const hostsFile = `${dir}/hosts`;
  await Deno.writeTextFile(hostsFile, hosts);
  // dnsmasq started as root reads its files as the user it drops to (nobody).
  await Deno.chmod(dir, 0o755);
  await Deno.chmod(hostsFile, 0o644);
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const proc = spawnCommand("dnsmasq", [
    ...["--keep-in-foreground", `--port=${port}`, "--listen-address=127.0.0.1"],
    ...["--bind-interfaces", "--no-resolv", "--no-hosts", `--addn-hosts=${hostsFile}`],
    ...["--local-ttl=1", "--log-facility=-", `--pid-file=${dir}/dnsmasq.pid`],
    ...extra,
  ]);
  await proc.waitForLine(/read .*hosts/);
  return {
    proc,
    server: `127.0.0.1:${port}`,
    async setHosts(text: string) {
      await Deno.writeTextFile(hostsFile, text);
      const from = proc.stderrLines.length;
      proc.kill("SIGHUP");
      await proc.waitForLine(/read .*hosts/, { from });
    },
    [Symbol.asyncDispose]: () => proc[Symbol.asyncDispose](),
  };
}
