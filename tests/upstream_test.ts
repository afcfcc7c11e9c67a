/**
 * Upstreams end to end: `proxy backend --listen` servers started by hand,
 * a front `proxy serve --workers 0 --upstream ...`, failures under load,
 * consistent hashing across two front proxies, and discovery through a real
 * DNS server (Debian's dnsmasq, on a loopback port).
 */

import assert from "node:assert/strict";
import type { RpcClient } from "../lib/client/rpc_client.ts";
import { LegacyClient } from "../lib/client/legacy_client.ts";
import { startProxy, type TestProxy } from "./helpers/proxy.ts";
import { type ProgramProcess, spawnProgram, tempDir, waitListening } from "./helpers/process.ts";
import { eventually } from "./helpers/wait.ts";
import { dnsmasq } from "./helpers/dnsmasq.ts";

/** A backend on `host:port` (port 0: any), with its address. */
async function backend(listen = "127.0.0.1:0"): Promise<{ proc: ProgramProcess; address: string }> {
  const proc = spawnProgram(["backend", "--listen", listen, "--test-methods"]);
  return { proc, address: await waitListening(proc) };
}

async function pidOf(client: RpcClient, params: unknown[] = []): Promise<number> {
  return ((await client.call("info", params)) as { pid: number }).pid;
}

function upstreamArgs(...addresses: string[]): string[] {
  return ["--workers", "0", ...addresses.flatMap((a) => ["--upstream", `tcp:${a}`])];
}

Deno.test("two backends started by hand behind serve --workers 0 --upstream share the requests", async () => {
  const a = await backend();
  const b = await backend();
  await using _a = a.proc;
  await using _b = b.proc;
  await using p = await startProxy(upstreamArgs(a.address, b.address));
  const pids = await Promise.all(Array.from({ length: 40 }, () => pidOf(p.client)));
  assert.deepEqual(new Set(pids), new Set([a.proc.pid, b.proc.pid]));
  const s = await p.stats();
  assert.equal(s.mode, "upstreams");
  assert.deepEqual(
    s.upstreams.map((u) => [u.address, u.state, u.connections]).sort(),
    [
      [a.address, "healthy", 2],
      [b.address, "healthy", 2],
    ].sort(),
  );
  assert.equal(s.upstreams.reduce((n, u) => n + u.served, 0), 40);
});

Deno.test("an upstream killed with SIGKILL under load: nothing unanswered, it is ejected, and it comes back on the same port", async () => {
  const a = await backend();
  const b = await backend();
  await using _b = b.proc;
  let aProc = a.proc;
  try {
    await using p = await startProxy([
      ...upstreamArgs(a.address, b.address),
      ...["--retry-idempotent", "echo", "--outlier-failures", "1", "--ejection-time", "300ms"],
      ...["--health-interval", "200ms"],
    ]);
    await using load = spawnProgram([
      ...["test", "--target", p.address, "--duration", "4s", "--connections", "8"],
      ...["--pipeline", "4", "--json"],
    ]);
    await eventually("load running", async () => (await p.stats()).totals.requests > 500);
    aProc.kill("SIGKILL");
    await eventually("the dead upstream out of rotation", async () => {
      const u = (await p.stats()).upstreams.find((u) => u.address === a.address)!;
      return u.state !== "healthy" && u.ejections + u.failures > 0;
    });
    aProc = spawnProgram(["backend", "--listen", a.address, "--test-methods"]);
    await waitListening(aProc);
    const servedBefore = (await p.stats()).upstreams.find((u) => u.address === a.address)!.served;
    await eventually("back in rotation", async () => {
      const u = (await p.stats()).upstreams.find((u) => u.address === a.address)!;
      return u.state === "healthy" && u.served > servedBefore;
    }, 15_000);
    const status = await load.waitExit(30_000);
    const report = JSON.parse(load.stdout) as {
      unanswered: number;
      errors: Record<string, number>;
      requests: number;
    };
    assert.equal(report.unanswered, 0, load.stdout);
    assert.deepEqual(report.errors, {}, "the requests on the dead one were retried on the other");
    assert.equal(status.code, 0, load.stderr);
    assert.ok((await p.stats()).totals.retries > 0);
  } finally {
    await aProc[Symbol.asyncDispose]();
  }
});

Deno.test("two front proxies with --balance hash send each of 1,000 keys to the same upstream", async () => {
  const backends = await Promise.all([backend(), backend(), backend()]);
  try {
    const args = [
      ...upstreamArgs(...backends.map((b) => b.address)),
      ...["--balance", "hash", "--route-key", "user_id"],
    ];
    await using front1 = await startProxy(args);
    // The second lists the upstreams in another order: the placement must not care.
    await using front2 = await startProxy([
      ...upstreamArgs(...backends.map((b) => b.address).reverse()),
      ...["--balance", "hash", "--route-key", "user_id"],
    ]);
    const keys = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    const via = async (p: TestProxy) => {
      const out: number[] = [];
      for (let i = 0; i < keys.length; i += 100) {
        out.push(
          ...await Promise.all(
            keys.slice(i, i + 100).map((k) => pidOf(p.client, [{ user_id: k }])),
          ),
        );
      }
      return out;
    };
    const [one, two] = [await via(front1), await via(front2)];
    assert.deepEqual(one, two);
    const perHost = new Map<number, number>();
    for (const pid of one) perHost.set(pid, (perHost.get(pid) ?? 0) + 1);
    assert.equal(perHost.size, 3, "every upstream got keys");
    for (const n of perHost.values()) assert.ok(n > 200 && n < 470, `${[...perHost.values()]}`);
    // Legacy frames travel over upstreams too, hashed by their user_id.
    const legacy = await LegacyClient.connect(front1.address);
    const reply = await legacy.call({ funcNo: 1001, body: '{"user_id":"user-7"}' });
    assert.equal(JSON.parse(new TextDecoder().decode(reply.body)).pid, one[7]);
    legacy.close();
  } finally {
    for (const b of backends) await b.proc[Symbol.asyncDispose]();
  }
});

Deno.test("dns: upstreams follow a real DNS server: one that leaves is drained, one that joins takes over, nothing is lost", async () => {
  await using dir = await tempDir();
  const a = await backend("127.0.0.2:0");
  const port = Number(a.address.split(":")[1]);
  const b = await backend(`127.0.0.3:${port}`);
  await using _a = a.proc;
  await using _b = b.proc;
  const dns = await dnsmasq(dir.path, "127.0.0.2 svc.test\n");
  await using _dns = dns.proc;
  await using p = await startProxy([
    ...["--workers", "0", "--upstream", `dns:svc.test:${port}`, "--dns-server", dns.server],
    ...["--dns-refresh", "1s"],
  ]);
  assert.equal(await pidOf(p.client), a.proc.pid);
  await using load = spawnProgram([
    ...["test", "--target", p.address, "--duration", "4s", "--connections", "4", "--json"],
  ]);
  await eventually("load running", async () => (await p.stats()).totals.requests > 200);
  await dns.setHosts("127.0.0.3 svc.test\n");
  await eventually("the new address in, the old one gone", async () => {
    const ups = (await p.stats()).upstreams;
    return ups.length === 1 && ups[0]!.address === b.address && ups[0]!.served > 0;
  });
  const status = await load.waitExit(30_000);
  const report = JSON.parse(load.stdout) as { unanswered: number; errors: Record<string, number> };
  assert.deepEqual([report.unanswered, report.errors], [0, {}], load.stdout);
  assert.equal(status.code, 0);
  assert.equal(await pidOf(p.client), b.proc.pid);
});

Deno.test("srv: upstreams get their hosts, ports and weights from SRV records", async () => {
  await using dir = await tempDir();
  const a = await backend();
  const b = await backend();
  await using _a = a.proc;
  await using _b = b.proc;
  const [pa, pb] = [a.address, b.address].map((x) => x.split(":")[1]);
  const dns = await dnsmasq(dir.path, "127.0.0.1 a.svc.test\n127.0.0.1 b.svc.test\n", [
    `--srv-host=_rpc._tcp.svc.test,a.svc.test,${pa},0,1`,
    `--srv-host=_rpc._tcp.svc.test,b.svc.test,${pb},0,3`,
  ]);
  await using _dns = dns.proc;
  await using p = await startProxy([
    ...["--workers", "0", "--upstream", "srv:_rpc._tcp.svc.test", "--dns-server", dns.server],
    ...["--balance", "round-robin"],
  ]);
  const ups = (await p.stats()).upstreams.map((u) => [u.address, u.weight]).sort();
  assert.deepEqual(ups, [[a.address, 1], [b.address, 3]].sort());
  const pids = [];
  for (let i = 0; i < 40; i++) pids.push(await pidOf(p.client));
  assert.equal(pids.filter((x) => x === b.proc.pid).length, 30, "weight 3 of 4 under round robin");
});

Deno.test("workers and upstreams together are one balanced set", async () => {
  const a = await backend();
  await using _a = a.proc;
  await using p = await startProxy([
    "--workers",
    "1",
    "--upstream",
    a.address,
    "--balance",
    "round-robin",
  ]);
  const pids = new Set<number>();
  for (let i = 0; i < 10; i++) pids.add(await pidOf(p.client));
  assert.equal(pids.size, 2, "the local worker and the upstream both served");
  const s = await p.stats();
  assert.equal(s.workers.length, 1);
  assert.equal(s.upstreams.length, 1);
});
