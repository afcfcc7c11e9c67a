/**
 * The two-tier fleet: the loopback example runs (`deno task fleet --check`),
 * and the Kubernetes manifests under `deploy/` hold together (the front
 * proxies discover the backend's headless Service by its SRV name, every
 * `serve` flag in them is one the program takes, with a value it accepts).
 */

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { SERVE_OPTIONS } from "../lib/options/serve_options.ts";
import { PERMISSION_FLAGS, REPO_ROOT, spawnDeno } from "./helpers/process.ts";

Deno.test("deno task fleet --check: each user meets one worker process through either front proxy", async () => {
  await using fleet = spawnDeno([
    "run",
    ...PERMISSION_FLAGS,
    `${REPO_ROOT}/scripts/fleet.ts`,
    "--check",
  ]);
  const status = await fleet.waitExit(60_000);
  assert.equal(status.code, 0, fleet.stderr + fleet.stdout);
  assert.match(fleet.stdout, /20 of 20 users met the same worker process through 2 front proxies/);
});

interface Doc {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

// deno-lint-ignore no-explicit-any
type Any = any;

async function manifests(file: string): Promise<Doc[]> {
  const text = await Deno.readTextFile(`${REPO_ROOT}/deploy/kubernetes/${file}`);
  return parseAllDocuments(text).map((d) => d.toJS() as Doc);
}

/** Checks every `--flag value` of a serve command line against the option table. */
function assertServeArgs(args: string[]): Map<string, string> {
  assert.equal(args[0], "serve");
  const seen = new Map<string, string>();
  for (let i = 1; i < args.length; i++) {
    const name = args[i]!.replace(/^--/, "");
    const option = SERVE_OPTIONS.find((o) => o.name === name);
    assert.ok(option, `unknown flag ${args[i]}`);
    if (option.arg === null) continue;
    const value = args[++i]!;
    assert.doesNotThrow(() => option.parse(value.replace("$(POD_NAMESPACE)", "default")), name);
    seen.set(name, value);
  }
  return seen;
}

Deno.test("the Kubernetes manifests: fronts find the backends' headless Service by SRV, flags are valid", async () => {
  const [backend, front] = [await manifests("backend.yaml"), await manifests("front.yaml")];
  const service = backend.find((d) => d.kind === "Service")!;
  const set = backend.find((d) => d.kind === "StatefulSet")!;
  assert.equal((service.spec as Any).clusterIP, "None", "headless");
  assert.equal((set.spec as Any).serviceName, service.metadata.name);
  const port = (service.spec as Any).ports[0];
  const backendArgs = assertServeArgs((set.spec as Any).template.spec.containers[0].args);
  assert.equal(backendArgs.get("pool"), "dedicated");
  assert.equal(backendArgs.get("port"), String(port.port));
  const deployment = front.find((d) => d.kind === "Deployment")!;
  const frontArgs = assertServeArgs((deployment.spec as Any).template.spec.containers[0].args);
  assert.equal(frontArgs.get("workers"), "0");
  assert.equal(frontArgs.get("balance"), "hash");
  assert.equal(frontArgs.get("route-key"), backendArgs.get("route-key"));
  assert.equal(
    frontArgs.get("upstream"),
    `srv:_${port.name}._tcp.${service.metadata.name}.$(POD_NAMESPACE).svc.cluster.local`,
  );
});
