/**
 * DNS lookups that report TTLs: A, AAAA and SRV over TCP (RFC 1035, 7766),
 * the transport every DNS server speaks (dnsmasq, CoreDNS in Kubernetes,
 * Consul). `Deno.resolveDns` answers without TTLs, so it is only the
 * fallback for resolvers that refuse TCP.
 *
 * @module
 */

/** One answer. */
export interface DnsAnswer {
  /** An address (A, AAAA) or a target host name (SRV). */
  data: string;
  /** Seconds the answer may be cached. */
  ttl: number;
  /** SRV only. */
  priority?: number;
  /** SRV only. */
  weight?: number;
  /** SRV only. */
  port?: number;
}

/** The record types asked for. */
export type DnsType = "A" | "AAAA" | "SRV";

const TYPE_CODES: Record<DnsType, number> = { A: 1, AAAA: 28, SRV: 33 };

/** Where to ask, and for how long. */
export interface DnsOptions {
  /** The server. @default {the first `nameserver` of /etc/resolv.conf, port 53} */
  server?: { hostname: string; port: number };
  /** Milliseconds to wait. @default {3000} */
  timeoutMs?: number;
}

/** A DNS failure (no such name, server error, timeout). */
export class DnsError extends Error {
  /** The response code (3 = no such name), or -1 for a transport failure. */
  readonly rcode: number;

  /**
   * @param message What failed.
   * @param rcode The response code, or -1.
   */
  constructor(message: string, rcode = -1) {
    super(message);
    this.name = "DnsError";
    this.rcode = rcode;
  }
}

/**
 * Builds a query message for `name` and `type` with id `id`.
 *
 * @example Usage
 * ```ts
 * import { dnsQuery } from "./dns.ts";
 * console.log(dnsQuery("a.b", "A", 1).length); // 21
 * ```
 */
export function dnsQuery(name: string, type: DnsType, id: number): Uint8Array {
  const labels = name.replace(/\.$/, "").split(".").filter(Boolean);
  const bytes: number[] = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const label of labels) {
    const b = new TextEncoder().encode(label);
    if (b.length > 63) {
      throw new DnsError(`Cannot ask for ${name}: a label is longer than 63 bytes`);
    }
    bytes.push(b.length, ...b);
  }
  bytes.push(0, 0, TYPE_CODES[type], 0, 1);
  return new Uint8Array(bytes);
}

// Reads a possibly compressed name at `pos`; returns it and the offset after it.
function readName(msg: Uint8Array, pos: number): [string, number] {
  const labels: string[] = [];
  let end = -1;
  for (let jumps = 0; jumps < 64; jumps++) {
    const len = msg[pos];
    if (len === undefined) throw new DnsError("Cannot read DNS answer: truncated name");
    if (len === 0) {
      return [labels.join("."), end < 0 ? pos + 1 : end];
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1]!;
      continue;
    }
    labels.push(new TextDecoder().decode(msg.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  throw new DnsError("Cannot read DNS answer: name compression loops");
}

/**
 * Reads the answers of type `type` from a response message.
 *
 * @throws {DnsError} On an error response code or a malformed message.
 */
export function parseDnsResponse(msg: Uint8Array, type: DnsType, id: number): DnsAnswer[] {
  if (msg.length < 12) throw new DnsError("Cannot read DNS answer: too short");
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (view.getUint16(0) !== id) throw new DnsError("Cannot read DNS answer: wrong id");
  const rcode = msg[3]! & 0x0f;
  if (rcode !== 0) throw new DnsError(`DNS server answered rcode ${rcode}`, rcode);
  const questions = view.getUint16(4);
  const answers = view.getUint16(6);
  let pos = 12;
  for (let i = 0; i < questions; i++) pos = readName(msg, pos)[1] + 4;
  const out: DnsAnswer[] = [];
  for (let i = 0; i < answers; i++) {
    pos = readName(msg, pos)[1];
    const rtype = view.getUint16(pos);
    const ttl = view.getUint32(pos + 4);
    const rdlength = view.getUint16(pos + 8);
    const rdata = pos + 10;
    pos = rdata + rdlength;
    if (rtype !== TYPE_CODES[type]) continue; // a CNAME on the way, say
    if (type === "A" && rdlength === 4) {
      out.push({ data: Array.from(msg.subarray(rdata, rdata + 4)).join("."), ttl });
    } else if (type === "AAAA" && rdlength === 16) {
      const parts: string[] = [];
      for (let j = 0; j < 16; j += 2) parts.push(view.getUint16(rdata + j).toString(16));
      out.push({ data: parts.join(":"), ttl });
    } else if (type === "SRV") {
      out.push({
        priority: view.getUint16(rdata),
        weight: view.getUint16(rdata + 2),
        port: view.getUint16(rdata + 4),
        data: readName(msg, rdata + 6)[0],
        ttl,
      });
    }
  }
  return out;
}

/** The first nameserver of /etc/resolv.conf (127.0.0.1 when none is found). */
export async function systemNameServer(): Promise<{ hostname: string; port: number }> {
  try {
    const text = await Deno.readTextFile("/etc/resolv.conf");
    const m = /^\s*nameserver\s+(\S+)/m.exec(text);
    if (m) return { hostname: m[1]!, port: 53 };
  } catch {
    // not readable here
  }
  return { hostname: "127.0.0.1", port: 53 };
}

let nextId = 1;

/**
 * Looks `name` up over TCP, with TTLs.
 *
 * @throws {DnsError} On failure (rcode 3: no such name).
 */
export async function resolveDnsTcp(
  name: string,
  type: DnsType,
  options: DnsOptions = {},
): Promise<DnsAnswer[]> {
  const server = options.server ?? await systemNameServer();
  const id = nextId = (nextId % 0xffff) + 1;
  const query = dnsQuery(name, type, id);
  const signal = AbortSignal.timeout(options.timeoutMs ?? 3000);
  let conn: Deno.TcpConn | undefined;
  const onAbort = () => conn?.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    conn = await Deno.connect({ hostname: server.hostname, port: server.port });
    const framed = new Uint8Array(2 + query.length);
    new DataView(framed.buffer).setUint16(0, query.length);
    framed.set(query, 2);
    await conn.write(framed);
    const head = await readExactly(conn, 2);
    const length = new DataView(head.buffer).getUint16(0);
    return parseDnsResponse(await readExactly(conn, length), type, id);
  } catch (err) {
    if (err instanceof DnsError) throw err;
    throw new DnsError(
      `Cannot look up ${name} (${type}) at ${server.hostname}:${server.port}: ${
        signal.aborted ? "no answer in time" : (err as Error).message
      }`,
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
    try {
      conn?.close();
    } catch {
      // closed by the timeout
    }
  }
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new DnsError("Cannot read DNS answer: connection closed");
    off += got;
  }
  return out;
}
