/**
 * The floor of any Deno front end: a TCP relay that pairs each client
 * connection with a connection to the backend that has the fewest (as
 * HAProxy's `leastconn` in TCP mode does) and copies bytes both ways, one
 * `read` and one `write` per chunk, parsing nothing. What it costs per
 * request is what Deno's I/O costs for the same traffic, before any proxy
 * logic.
 *
 * `deno run --allow-net scripts/bench/deno_relay.ts PORT BACKEND...`
 * (`BACKEND`: `HOST:PORT`). Listens on 127.0.0.1:PORT until killed.
 *
 * @module
 */

import { type Address, connect, parseAddress } from "../../lib/net/address.ts";

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
  } catch {
    // reset by either side: the other one is closed below
  }
  for (const c of [from, to]) {
    try {
      c.close();
    } catch {
      // closed already
    }
  }
}

async function serve(port: number, backends: Address[]): Promise<void> {
  const open = backends.map(() => 0);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  for await (const client of listener) {
    let i = 0;
    for (let j = 1; j < open.length; j++) if (open[j]! < open[i]!) i = j;
    open[i]!++;
    client.setNoDelay(true);
    connect(backends[i]!) // TCP_NODELAY too
      .then((server) => Promise.all([pipe(client, server), pipe(server, client)]))
      .catch(() => client.close())
      .finally(() => open[i]!--);
  }
}

if (import.meta.main) {
  const [port, ...backends] = Deno.args;
  if (!port || backends.length === 0) {
    console.error("usage: deno_relay.ts PORT BACKEND...");
    Deno.exit(2);
  }
  await serve(Number(port), backends.map(parseAddress));
}
