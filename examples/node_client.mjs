// A client on plain Node, with the npm package's client library:
//
//   npm i proxy-<version>.tgz               # or npm i -g, then NODE_PATH...
//   node examples/node_client.mjs 127.0.0.1:8080
//
// Calls are pipelined on one connection and answered by msgid; values come
// back exactly as MessagePack has them (an integer beyond 2^53 as a BigInt).
import { RemoteError, RpcClient } from "proxy/client";

const address = process.argv[2] ?? "127.0.0.1:8080";
const client = await RpcClient.connect(address, { connectTimeout: 5000 });
try {
  const big = 2n ** 64n - 1n; // the largest uint64: no JavaScript number holds it
  const echoed = await client.call("echo", [big], { timeout: 5000 });
  console.log(`echo: ${echoed} (${typeof echoed}, exact: ${echoed === big})`);

  const pongs = await Promise.all(
    Array.from({ length: 100 }, () => client.call("ping", [], { timeout: 5000 })),
  );
  console.log(`ping x ${pongs.length} pipelined: ${pongs.every((p) => p === "pong")}`);

  try {
    await client.call("no.such.method", [], { timeout: 5000 });
  } catch (err) {
    if (!(err instanceof RemoteError)) throw err;
    console.log(`error: ${err.code}`); // METHOD_NOT_FOUND
  }

  const stats = await client.call("proxy.stats", [], { timeout: 5000 });
  console.log(`workers: ${stats.workers.length}`);
} finally {
  client.close();
}
