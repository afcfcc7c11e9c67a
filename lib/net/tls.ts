/**
 * TLS: the PEM files a server listens with or a client trusts, a listener,
 * and connecting. Both sides run on `node:tls` so that a connection can be
 * closed for good at any time (see `TlsSocketConn`).
 *
 * @module
 */

import {
  type AddressInfo,
  connect as netConnect,
  createServer,
  isIP,
  type Server,
  type Socket,
} from "node:net";
import {
  connect as tlsConnect,
  createSecureContext,
  type SecureContext,
  TLSSocket,
} from "node:tls";
import { ErrorCode, ProxyError } from "../protocol/errors.ts";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { OptionError } from "../options/option.ts";
import { TlsSocketConn } from "./tls_conn.ts";

/** How a client checks a TLS server. */
export interface TlsClientOptions {
  /** PEM certificates (one or more per string) to trust; without, the default roots. */
  caCerts?: string[];
  /** The name the server's certificate must be for (and SNI). @default {the address's hostname} */
  serverName?: string;
}

/** The TLS options clients take as flat fields (`RpcClient`, `LegacyClient`). */
export interface TlsClientFields {
  /** Connect with TLS. @default {false} */
  tls?: boolean;
  /** With `tls`: PEM certificates trusted besides the default roots. */
  caCerts?: string[];
  /** With `tls`: the name the server's certificate must be for. @default {the address's host} */
  serverName?: string;
}

/** The {@linkcode TlsClientOptions} that flat fields ask for; undefined without `tls`. */
export function clientTls(fields: TlsClientFields): TlsClientOptions | undefined {
  if (!fields.tls) return undefined;
  const { caCerts, serverName } = fields;
  return { ...(caCerts ? { caCerts } : {}), ...(serverName ? { serverName } : {}) };
}

/** A server's certificate chain and private key, both PEM. */
export interface TlsServerCert {
  /** The certificate chain, the server's own first. */
  cert: string;
  /** Its private key. */
  key: string;
}

/** Reads a PEM file, checking it holds a block of `kind` (e.g. `CERTIFICATE`). */
async function readPem(path: string, flag: string, kind: RegExp): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new OptionError(flag, `cannot read ${path}: ${(err as Error).message}`);
  }
  if (!new RegExp(`-----BEGIN ${kind.source}-----`).test(text)) {
    throw new OptionError(flag, `${path} holds no PEM ${kind.source.replaceAll("\\", "")} block`);
  }
  return text;
}

/**
 * Reads the certificate chain and key a server listens with.
 *
 * @param certFile The certificate chain (PEM).
 * @param keyFile Its private key (PEM: PKCS#8, RSA or EC).
 * @throws {OptionError} `--tls-cert` or `--tls-key` when a file cannot be read or used, or the
 * key is not the certificate's.
 */
export async function readServerCert(certFile: string, keyFile: string): Promise<TlsServerCert> {
  const cert = await readPem(certFile, "--tls-cert", /CERTIFICATE/);
  const key = await readPem(keyFile, "--tls-key", /(?:RSA |EC )?PRIVATE KEY/);
  // Checked here: the TLS layer would only fail at the first handshake.
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new OptionError("--tls-cert", `${certFile}: ${(err as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new OptionError("--tls-key", `${keyFile}: ${(err as Error).message}`);
  }
  if (!matches) {
    throw new OptionError("--tls-key", `${keyFile} is not the private key of ${certFile}`);
  }
  return { cert, key };
}

/**
 * Reads a file of CA certificates (PEM, one or more).
 *
 * @param path The file.
 * @param flag The flag that named it, for messages.
 * @throws {OptionError} When it cannot be read or holds no certificate.
 */
export async function readCaCerts(path: string, flag: string): Promise<string[]> {
  return [await readPem(path, flag, /CERTIFICATE/)];
}

/** Connections accepted and not yet taken by `accept()`; beyond, newcomers are closed. */
const ACCEPT_BACKLOG = 4096;

/**
 * A TLS listener with the `Deno.Listener` interface, over `node:net` and
 * `node:tls` (see `TlsSocketConn` for why). Its connections are handed out
 * at once; their handshakes run on their own (see `TlsSocketConn.handshake`).
 */
export class TlsListener implements Deno.Listener<TlsSocketConn, Deno.NetAddr> {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  readonly #server: Server;
  readonly #waiting: TlsSocketConn[] = [];
  #acceptor: { resolve: (c: TlsSocketConn) => void; reject: (e: Error) => void } | null = null;
  #closed = false;

  /** Use {@linkcode listenTls}. */
  constructor(server: Server, addr: Deno.NetAddr, context: SecureContext) {
    this.#server = server;
    this.addr = addr;
    server.on("connection", (tcp: Socket) => {
      tcp.on("error", () => {}); // seen through the TLS socket
      tcp.setNoDelay(true);
      const tls = new TLSSocket(tcp, { isServer: true, secureContext: context });
      const conn = new TlsSocketConn(tls, tcp, "secure");
      tls.on("error", () => {}); // a failed handshake is the owner's to see
      const acceptor = this.#acceptor;
      if (acceptor) {
        this.#acceptor = null;
        acceptor.resolve(conn);
      } else if (this.#waiting.length < ACCEPT_BACKLOG) this.#waiting.push(conn);
      else conn.close();
    });
  }

  /**
   * The next connection.
   *
   * @throws {Deno.errors.BadResource} Once the listener is closed.
   */
  accept(): Promise<TlsSocketConn> {
    const next = this.#waiting.shift();
    if (next) return Promise.resolve(next);
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Cannot accept: listener closed"));
    }
    return new Promise((resolve, reject) => this.#acceptor = { resolve, reject });
  }

  /** Stops listening; connections accepted stay open. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#waiting.splice(0)) conn.close();
    this.#acceptor?.reject(new Deno.errors.BadResource("Cannot accept: listener closed"));
    this.#acceptor = null;
  }

  /** Keeps the event loop alive while listening (the default). */
  ref(): void {
    this.#server.ref();
  }

  /** Lets the event loop end while listening. */
  unref(): void {
    this.#server.unref();
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<TlsSocketConn> {
    while (true) {
      try {
        yield await this.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource) return;
        throw err;
      }
    }
  }

  /** Closes (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Listens with TLS on a TCP address.
 *
 * @throws {Deno.errors.AddrInUse} When the address is taken.
 * @throws {Error} When the certificate or key is unusable (e.g. they do not match).
 */
export async function listenTls(
  address: { hostname: string; port: number },
  cert: TlsServerCert,
): Promise<TlsListener> {
  const context = createSecureContext({ cert: cert.cert, key: cert.key });
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: Error & { code?: string }) =>
      reject(
        err.code === "EADDRINUSE"
          ? new Deno.errors.AddrInUse(`${address.hostname}:${address.port}: address in use`)
          : err,
      ));
    server.listen(address.port, address.hostname, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return new TlsListener(
    server,
    { transport: "tcp", hostname: bound.address, port: bound.port },
    context,
  );
}

/** Options of {@linkcode connectTls}. */
export interface ConnectTlsOptions extends TlsClientOptions {
  /** Aborts connecting (the sockets are destroyed at once). */
  signal?: AbortSignal;
}

/**
 * Connects with TLS and completes the handshake, so that a certificate
 * problem shows here rather than at the first read.
 *
 * @param address The server's host (name or address) and port.
 * @param options Trusted CAs, the name to check, and cancellation.
 * @throws {ProxyError} `CONNECT_FAILED` when no TCP connection could be made;
 * `TLS_FAILED` with the reason (e.g. `unable to verify the first certificate`)
 * when the handshake failed.
 * @throws {DOMException} `AbortError` when `signal` aborts.
 */
export function connectTls(
  address: { hostname: string; port: number },
  options: ConnectTlsOptions = {},
): Promise<TlsSocketConn> {
  const name = options.serverName ?? address.hostname;
  return new Promise((resolve, reject) => {
    const tcp = netConnect({ host: address.hostname, port: address.port });
    let tls: TLSSocket | undefined;
    let stage: "tcp" | "tls" = "tcp";
    const onAbort = () => fail(new DOMException("connecting aborted", "AbortError"));
    const fail = (err: Error) => {
      options.signal?.removeEventListener("abort", onAbort);
      tls?.destroy();
      tcp.destroy();
      if (err instanceof DOMException) return reject(err);
      reject(
        stage === "tcp"
          ? new ProxyError(ErrorCode.CONNECT_FAILED, err.message, { cause: err })
          : new ProxyError(
            ErrorCode.TLS_FAILED,
            `TLS handshake with ${name} failed: ${err.message}`,
            { cause: err },
          ),
      );
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    tcp.once("error", fail);
    tcp.once("connect", () => {
      stage = "tls";
      tcp.setNoDelay(true);
      tls = tlsConnect({
        socket: tcp,
        // SNI takes names only; an address is checked against the certificate all the same.
        ...(isIP(name) ? { host: name } : { servername: name, host: name }),
        ...(options.caCerts ? { ca: options.caCerts } : {}),
      });
      const conn = new TlsSocketConn(tls, tcp, "secureConnect");
      tls.on("error", () => {}); // reported below, then by reads
      conn.handshake().then(() => {
        options.signal?.removeEventListener("abort", onAbort);
        tcp.off("error", fail);
        tcp.on("error", () => {}); // seen through the TLS socket from now on
        resolve(conn);
      }, (err) => fail(err instanceof Error ? err : new Error(String(err))));
    });
  });
}
