/**
 * Upstreams on other "hosts": network namespaces joined to this one by veth
 * pairs (as root, as CI runs). The link to one host is cut mid-load (`ip
 * link set down`: a black hole, no reset), then restored. Every namespace
 * and process the test made is removed on every path.
 */

import assert from "node:assert/strict";
import { startProxy } from "./helpers/proxy.ts";
import { programArgs, spawnCommand, spawnProgram, waitListening } from "./helpers/process.ts";
import { eventually } from "./helpers/wait.ts";

const ROOT = Deno.uid() === 0;

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** A namespace with a veth link to this one: host side .1, namespace side .2. */
async function host(name: string, subnet: string) {
  const link = `v${name}`;
  await ip("netns", "add", name);
  await ip("link", "add", link, "type", "veth", "peer", "name", `${link}n`, "netns", name);
  await ip("addr", "add", `${subnet}.1/24`, "dev", link);
  await ip("link", "set", link, "up");
  await ip("-n", name, "addr", "add", `${subnet}.2/24`, "dev", `${link}n`);
  await ip("-n", name, "link", "set", `${link}n`, "up");
  await ip("-n", name, "link", "set", "lo", "up");
  return { name, link, address: `${subnet}.2` };
}

Deno.test({
  name:
    "an upstream whose link is cut mid-load is ejected, no request is lost without an answer, and it recovers",
  ignore: !ROOT,
  fn: async () => {
    const tag = String(Deno.pid % 100_000);
    const made: string[] = [];
    const procs: AsyncDisposable[] = [];
    try {
      const hosts = [];
      for (const [i, subnet] of [`10.77.${Deno.pid % 200}`, `10.78.${Deno.pid % 200}`].entries()) {
        const name = `px${i}${tag}`;
        made.push(name);
        hosts.push(await host(name, subnet));
      }
      const backends = [];
      for (const h of hosts) {
        const proc = spawnCommand("ip", [
          ...["netns", "exec", h.name, Deno.execPath()],
          ...programArgs("backend", "--listen", `${h.address}:9000`, "--test-methods"),
        ]);
        procs.push(proc);
        backends.push(await waitListening(proc));
      }
      const p = await startProxy([
        ...["--workers", "0", ...backends.flatMap((b) => ["--upstream", b])],
        ...["--request-timeout", "1s", "--outlier-failures", "2", "--ejection-time", "500ms"],
        ...["--health-interval", "200ms", "--health-timeout", "300ms", "--health-fall", "2"],
        ...["--upstream-connect-timeout", "300ms", "--retry-idempotent", "echo"],
      ]);
      procs.push(p);
      const load = spawnProgram([
        ...[
          "test",
          "--target",
          p.address,
          "--duration",
          "6s",
          "--connections",
          "8",
          "--pipeline",
          "2",
        ],
        ...["--json", "--expect-error", "TIMEOUT", "--expect-error", "UPSTREAM_FAILED"],
      ]);
      procs.push(load);
      await eventually("load running", async () => (await p.stats()).totals.requests > 300);
      await ip("link", "set", hosts[0]!.link, "down");
      const cut = backends[0]!;
      await eventually("the cut host out of rotation", async () => {
        const u = (await p.stats()).upstreams.find((u) => u.address === cut)!;
        return u.state === "ejected" || u.state === "unhealthy";
      });
      const before = (await p.stats()).upstreams.find((u) => u.address === cut)!.served;
      await ip("link", "set", hosts[0]!.link, "up");
      await eventually("the host back in rotation", async () => {
        const u = (await p.stats()).upstreams.find((u) => u.address === cut)!;
        return u.state === "healthy" && u.served > before;
      }, 15_000);
      await load.waitExit(30_000);
      const report = JSON.parse(load.stdout) as {
        unanswered: number;
        errors: Record<string, number>;
        passed: boolean;
      };
      assert.equal(report.unanswered, 0, load.stdout);
      assert.ok(report.passed, load.stdout);
      const s = await p.stats();
      assert.ok(s.upstreams.every((u) => u.state === "healthy"));
    } finally {
      for (const proc of procs.reverse()) {
        await Promise.resolve(proc[Symbol.asyncDispose]()).catch(() => {});
      }
      for (const name of made) await ip("netns", "del", name).catch(() => {});
    }
  },
});
