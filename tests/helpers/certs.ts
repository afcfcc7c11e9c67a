/**
 * Certificates for the TLS tests, made with `openssl` (Debian's `openssl`;
 * `.ci/run` installs it): a CA and a server certificate it signed, for
 * 127.0.0.1, localhost and backend.test; and a second, untrusted CA with a
 * server certificate of its own for the same names.
 *
 * @module
 */

/** Paths of the PEM files made. */
export interface TestCerts {
  /** The CA the tests trust. */
  ca: string;
  /** A server certificate signed by `ca`, and its key. */
  cert: string;
  key: string;
  /** A server certificate for the same names, signed by another CA nobody trusts. */
  rogueCert: string;
  rogueKey: string;
}

const SERVER_NAMES = "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:backend.test\n" +
  "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}` +
        " (install Debian's openssl)",
    );
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    dir,
    ...["req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.pem`],
    ...["-days", "2", "-subj", `/CN=${name} test CA`],
  );
}

async function makeServer(dir: string, ca: string, name: string): Promise<void> {
  await openssl(
    dir,
    ...["req", "-new", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`],
    ...["-subj", "/CN=localhost"],
  );
  await openssl(
    dir,
    ...["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`],
    ...["-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", "server.ext"],
  );
}

/**
 * Makes the certificates in `dir`.
 *
 * @throws {Error} When openssl is missing or fails.
 */
export async function makeCerts(dir: string): Promise<TestCerts> {
  await Deno.writeTextFile(`${dir}/server.ext`, SERVER_NAMES);
  await makeCa(dir, "ca");
  await makeCa(dir, "rogue-ca");
  await makeServer(dir, "ca", "server");
  await makeServer(dir, "rogue-ca", "rogue");
  return {
    ca: `${dir}/ca.pem`,
    cert: `${dir}/server.pem`,
    key: `${dir}/server.key`,
    rogueCert: `${dir}/rogue.pem`,
    rogueKey: `${dir}/rogue.key`,
  };
}
