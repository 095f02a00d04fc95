/**
 * TLS certificate fixtures made with the openssl CLI (run asynchronously: receivers under test share
 * the event loop). One call writes, into a fresh temp directory:
 *
 *   ca.pem / ca.key            a CA
 *   server.pem / server.key    CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by the CA
 *   client.pem / client.key    a client certificate signed by the CA (clientAuth)
 *   rogue.pem / rogue.key      a self-signed client certificate nobody trusts
 *
 * Keys are unencrypted RSA 2048 (dcmtk loads them without prompting for a password), certificates
 * SHA-256 and valid for two days from now: tests must not fake the clock.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface TlsFixtures {
  dir: string;
  ca: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Self-signed, not issued by `ca`. */
  rogueCert: string;
  rogueKey: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("openssl", args, { cwd }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(" ")} failed: ${String(stderr)}`));
      else resolve();
    });
  });
}

export async function makeTlsFixtures(tag = "tls"): Promise<TlsFixtures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fiona-${tag}-`));
  const p = (name: string) => path.join(dir, name);
  const days = ["-days", "2"];

  // A self-signed certificate and its key: `${name}.pem`, `${name}.key`.
  const selfSigned = (name: string, cn: string, ext: string[]) =>
    openssl(
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        ...days,
        "-subj",
        `/CN=${cn}`,
        ...ext.flatMap((e) => ["-addext", e]),
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.pem`,
      ],
      dir,
    );

  // CA (CA:true so OpenSSL and dcmtk accept it as an issuer).
  await selfSigned("ca", "FIONA Test CA", [
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);

  // A leaf signed by the CA: key + CSR, then x509 -req with an extension file.
  const leaf = async (name: string, cn: string, ext: string[]) => {
    await openssl(
      [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        `/CN=${cn}`,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
      ],
      dir,
    );
    fs.writeFileSync(p(`${name}.ext`), `${ext.join("\n")}\n`);
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-sha256",
        ...days,
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.pem`,
      ],
      dir,
    );
  };
  // Sequential: both use ca.srl.
  await leaf("server", "localhost", [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth,clientAuth",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  await leaf("client", "FIONA test client", [
    "basicConstraints=CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=clientAuth,serverAuth",
  ]);

  // Untrusted: self-signed, same shape as a client certificate.
  await selfSigned("rogue", "rogue client", ["extendedKeyUsage=clientAuth"]);

  return {
    dir,
    ca: p("ca.pem"),
    caKey: p("ca.key"),
    serverCert: p("server.pem"),
    serverKey: p("server.key"),
    clientCert: p("client.pem"),
    clientKey: p("client.key"),
    rogueCert: p("rogue.pem"),
    rogueKey: p("rogue.key"),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
