/**
 * Discovery through DNS, the system Kubernetes (headless services), Consul
 * and Nomad already answer: `dns:NAME:PORT` gives the A/AAAA addresses of
 * NAME, `srv:_service._proto.NAME` the hosts, ports and weights of its SRV
 * records (of the best priority), each with the records' TTL, so the set
 * re-resolves when they expire (bounded by `--dns-refresh`).
 *
 * @module
 */

import { type DnsAnswer, DnsError, type DnsType, resolveDnsTcp } from "../net/dns.ts";
import type { Address } from "../net/address.ts";

/** One member found. */
export interface Discovered {
  address: Address;
  weight: number;
  /** The name that resolved to it (what a TLS certificate must be for). */
  name: string;
}

/** What a lookup found, and how long it holds. */
export interface Discovery {
  members: Discovered[];
  /** Milliseconds until the answers expire (the smallest TTL). */
  ttlMs: number;
}

/** Looks names up; `resolveDnsTcp` with a fallback to `Deno.resolveDns` in production. */
export type Resolver = (name: string, type: DnsType) => Promise<DnsAnswer[]>;

/**
 * The resolver the proxy uses: DNS over TCP to `server` (or the system's),
 * with TTLs; when the server refuses TCP, `Deno.resolveDns` (answers without
 * TTLs, which then count as `fallbackTtlS`).
 */
export function dnsResolver(
  server: { hostname: string; port: number } | undefined,
  fallbackTtlS: number,
): Resolver {
  return async (name, type) => {
    try {
      return await resolveDnsTcp(name, type, server ? { server } : {});
    } catch (err) {
      if (err instanceof DnsError && err.rcode >= 0) throw err; // the server answered: no fallback
      const options = server ? { nameServer: { ipAddr: server.hostname, port: server.port } } : {};
      if (type === "SRV") {
        const records = await Deno.resolveDns(name, "SRV", options);
        return records.map((r) => ({ ...r, data: r.target, ttl: fallbackTtlS }));
      }
      const addresses = await Deno.resolveDns(name, type, options);
      return addresses.map((data) => ({ data, ttl: fallbackTtlS }));
    }
  };
}

/**
 * Resolves `dns:NAME:PORT`: every address of NAME (A, then AAAA when there
 * are none), each an upstream on `port` with `weight`.
 *
 * @throws {DnsError} When nothing resolves.
 */
export async function discoverDns(
  resolve: Resolver,
  name: string,
  port: number,
  weight: number,
): Promise<Discovery> {
  let answers = await resolve(name, "A").catch((err) => {
    if (err instanceof DnsError && err.rcode === 3) return [];
    throw err;
  });
  if (answers.length === 0) answers = await resolve(name, "AAAA");
  return {
    members: answers.map((a) => ({
      address: { transport: "tcp", hostname: a.data, port },
      weight,
      name,
    })),
    ttlMs: minTtl(answers),
  };
}

/**
 * Resolves `srv:NAME`: the SRV records of the best (lowest) priority, each
 * target resolved to its addresses, with the record's port and weight (a
 * weight of 0 counts as 1).
 */
export async function discoverSrv(resolve: Resolver, name: string): Promise<Discovery> {
  const records = await resolve(name, "SRV");
  if (records.length === 0) return { members: [], ttlMs: 0 };
  const best = Math.min(...records.map((r) => r.priority ?? 0));
  const chosen = records.filter((r) => (r.priority ?? 0) === best);
  const members: Discovered[] = [];
  let ttl = minTtl(records);
  for (const r of chosen) {
    const found = await discoverDns(resolve, r.data, r.port!, Math.max(1, r.weight ?? 1));
    members.push(...found.members);
    ttl = Math.min(ttl, found.ttlMs);
  }
  return { members, ttlMs: ttl };
}

function minTtl(answers: DnsAnswer[]): number {
  return answers.length === 0 ? 0 : Math.min(...answers.map((a) => a.ttl)) * 1000;
}
