/**
 * The `node:net` connection the client uses where there is no `Deno`
 * (`lib/net/node_conn.ts`), run here under Deno's `node:net` against a plain
 * Deno listener: the calls `FrameConnection` makes behave as `Deno.Conn`'s do.
 */

import assert from "node:assert/strict";
import { connectNode } from "../lib/net/node_conn.ts";
import { closedPort } from "./helpers/process.ts";

function listener(): { listener: Deno.TcpListener; port: number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return { listener, port: listener.addr.port };
}

async function readAll(conn: Deno.Conn, size: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(size);
  let n: number | null;
  while ((n = await conn.read(buf)) !== null) parts.push(buf.slice(0, n));
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("connectNode() reads a large stream in small reads, in order, then null at its end", async () => {
  const { listener: server, port } = listener();
  const sent = new Uint8Array(1024 * 1024 + 7).map((_, i) => (i * 31) % 256);
  const serving = (async () => {
    const conn = await server.accept();
    let off = 0;
    while (off < sent.length) off += await conn.write(sent.subarray(off));
    conn.close();
  })();
  const conn = await connectNode({ transport: "tcp", hostname: "127.0.0.1", port });
  // Reads smaller than what arrives: the rest waits for the next read.
  const got = await readAll(conn, 1000);
  await serving;
  server.close();
  conn.close();
  assert.equal(got.length, sent.length);
  assert.deepEqual(got, sent);
});

Deno.test("connectNode() writes resolve with their length, closeWrite() ends the peer's input, reads go on", async () => {
  const { listener: server, port } = listener();
  const serving = (async () => {
    const conn = await server.accept();
    const got = await readAll(conn, 4096); // until our closeWrite()
    await conn.write(new TextEncoder().encode(`got ${got.length}`));
    conn.close();
  })();
  const conn = await connectNode({ transport: "tcp", hostname: "127.0.0.1", port });
  assert.equal(await conn.write(new Uint8Array(300_000)), 300_000);
  assert.equal(await conn.write(new Uint8Array(5)), 5);
  await conn.closeWrite();
  assert.equal(new TextDecoder().decode(await readAll(conn, 100)), "got 300005");
  await serving;
  server.close();
  conn.close();
});

Deno.test("connectNode(): close() ends a pending read with null; close twice is fine; writes then fail", async () => {
  const { listener: server, port } = listener();
  const accepted = server.accept();
  const conn = await connectNode({ transport: "tcp", hostname: "127.0.0.1", port });
  const pending = conn.read(new Uint8Array(16));
  conn.close();
  conn.close();
  assert.equal(await pending, null);
  await assert.rejects(conn.write(new Uint8Array(1)));
  (await accepted).close();
  server.close();
});

Deno.test("connectNode() rejects with the OS error when nothing listens, and reaches Unix sockets", async () => {
  await assert.rejects(
    connectNode({ transport: "tcp", hostname: "127.0.0.1", port: closedPort() }),
    /ECONNREFUSED/,
  );
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/s.sock`;
    const server = Deno.listen({ transport: "unix", path });
    const serving = (async () => {
      const conn = await server.accept();
      await conn.write(new TextEncoder().encode("hi"));
      conn.close();
    })();
    const conn = await connectNode({ transport: "unix", path });
    assert.equal(new TextDecoder().decode(await readAll(conn, 16)), "hi");
    await serving;
    conn.close();
    server.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
