/**
 * `--upstream` values: where upstreams are, fixed or discovered.
 *
 * - `tcp:HOST:PORT` (or just `HOST:PORT`), `unix:/path`: one server;
 * - `tls:HOST:PORT`: one server, over TLS (its certificate checked against HOST);
 * - `dns:NAME:PORT`: every A/AAAA address of NAME, on PORT;
 * - `srv:_service._proto.NAME`: the hosts, ports and weights of the SRV records;
 * - `dns+tls:` and `srv+tls:`: the same over TLS, each server's certificate
 *   checked against the name looked up (NAME, or the SRV record's target);
 *
 * each optionally followed by `,weight=N` (not for `srv:`, whose records
 * carry their weights).
 *
 * @module
 */

import { type Address, parseAddress } from "../net/address.ts";

/** A parsed `--upstream`. */
export type UpstreamSpec =
  & (
    | { kind: "static"; address: Address; weight: number; text: string }
    | { kind: "dns"; name: string; port: number; weight: number; text: string }
    | { kind: "srv"; name: string; text: string }
  )
  & {
    /** Over TLS (present only then). */
    tls?: true;
  };

/**
 * Parses one `--upstream` value.
 *
 * @throws {TypeError} When the text is not an upstream.
 *
 * @example Usage
 * ```ts
 * import { parseUpstreamSpec } from "./upstream_spec.ts";
 * console.log(parseUpstreamSpec("tcp:10.0.0.1:9000,weight=3"));
 * ```
 */
export function parseUpstreamSpec(text: string): UpstreamSpec {
  const [where, ...opts] = text.split(",");
  let weight = 1;
  for (const opt of opts) {
    const m = /^weight=(\d+)$/.exec(opt.trim());
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 10_000) {
      throw new TypeError(
        `Cannot parse upstream "${text}": expected ,weight=N with N from 1 to 10000`,
      );
    }
    weight = Number(m[1]);
  }
  let w = where!.trim();
  // `dns+tls:` and `srv+tls:` are `dns:` and `srv:` over TLS.
  const tls = /^(dns|srv)\+tls:/.test(w) || w.startsWith("tls:");
  if (tls) w = w.startsWith("tls:") ? w.slice(4) : w.replace("+tls:", ":");
  const over = tls ? { tls: true as const } : {};
  if (w.startsWith("srv:")) {
    const name = w.slice(4);
    if (!/^_[^.]+\._(tcp|udp)\..+/.test(name)) {
      throw new TypeError(`Cannot parse upstream "${text}": expected srv:_service._tcp.NAME`);
    }
    if (opts.length > 0) {
      throw new TypeError(`Cannot parse upstream "${text}": SRV records carry the weights`);
    }
    return { kind: "srv", name, text, ...over };
  }
  if (w.startsWith("dns:")) {
    const rest = w.slice(4);
    const colon = rest.lastIndexOf(":");
    const port = Number(rest.slice(colon + 1));
    if (colon <= 0 || !/^\d+$/.test(rest.slice(colon + 1)) || port < 1 || port > 65535) {
      throw new TypeError(`Cannot parse upstream "${text}": expected dns:NAME:PORT`);
    }
    return { kind: "dns", name: rest.slice(0, colon), port, weight, text, ...over };
  }
  if (tls && (w.startsWith("unix:") || w.startsWith("tcp:"))) {
    throw new TypeError(`Cannot parse upstream "${text}": expected tls:HOST:PORT`);
  }
  const address = parseAddress(w.startsWith("tcp:") ? w.slice(4) : w);
  if (address.transport === "tcp" && address.port === 0) {
    throw new TypeError(`Cannot parse upstream "${text}": port 0 is no server`);
  }
  return { kind: "static", address, weight, text, ...over };
}
