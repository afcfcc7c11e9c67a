/**
 * A handler module whose methods need permissions a built-in worker does not
 * get unless the proxy grants them (`--worker-allow-net`, `--worker-allow-env`).
 *
 * @module
 */

/** Opens a TCP connection to 127.0.0.1:`port` and closes it. */
export async function connectTo(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.close();
  return "connected";
}

/** The body of a GET of `url`. */
export async function fetchText(url: string): Promise<string> {
  const response = await fetch(url);
  return await response.text();
}

/** The value of the environment variable `name`, or null. */
export function readEnv(name: string): string | null {
  return Deno.env.get(name) ?? null;
}
