/**
 * DICOM TLS on the receiver (its own port; the plain port stays open) against dcmtk's echoscu and
 * storescu with +tls: server-only TLS, client certificates verified against a CA, and a TLS 1.3
 * minimum. Certificates come from test/support/tls.ts (openssl CLI).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfigInput } from "../../src/config/schema.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { makeTlsFixtures, type TlsFixtures } from "../support/tls.js";
import {
  archivedFiles,
  normalizedDump,
  run,
  startTestReceiver,
  storescu,
  tempDir,
  type TestReceiver,
} from "./helpers.js";

let certs: TlsFixtures;
let genDir: string;
let study: GeneratedStudy;

beforeAll(async () => {
  certs = await makeTlsFixtures("rx-tls");
  genDir = tempDir("tls");
  study = generateStudy({
    outDir: path.join(genDir, "mr"),
    seed: "rx-tls",
    series: 3,
    instancesPerSeries: 2,
    fileSize: 2048,
  });
});
afterAll(() => {
  certs?.remove();
  fs.rmSync(genDir, { recursive: true, force: true });
});

/** dcmtk TLS client options: our certificate (or +tla: none), trusting our CA for the server's. */
const withClientCert = () => ["+tls", certs.clientKey, certs.clientCert, "+cf", certs.ca];
const withRogueCert = () => ["+tls", certs.rogueKey, certs.rogueCert, "+cf", certs.ca];
const anonymous = () => ["+tla", "+cf", certs.ca];

function echoscu(port: number, tlsArgs: string[], extra: string[] = []) {
  return run("echoscu", [...tlsArgs, ...extra, "-to", "5", "-aec", "FIONA", "127.0.0.1", String(port)]);
}

type TlsInput = NonNullable<NonNullable<FionaConfigInput["receiver"]>["tls"]>;

async function tlsReceiver(tls: Partial<TlsInput>): Promise<TestReceiver> {
  const rx = await startTestReceiver(
    { receiver: { tls: { cert: certs.serverCert, key: certs.serverKey, ...tls } } },
    { tlsPort: 0 },
  );
  expect(rx.handle.tlsPort).toBeGreaterThan(0);
  expect(rx.handle.tlsPort).not.toBe(rx.handle.port);
  return rx;
}

describe("receiver TLS, client certificate optional", () => {
  let rx: TestReceiver;
  beforeAll(async () => {
    rx = await tlsReceiver({ ca: certs.ca });
  });
  afterAll(async () => {
    await rx?.close();
  });

  it("answers C-ECHO over TLS, with or without a client certificate, and on the plain port", async () => {
    const port = rx.handle.tlsPort!;
    const withCert = await echoscu(port, withClientCert());
    expect(withCert.code, withCert.stderr).toBe(0);
    const anon = await echoscu(port, anonymous());
    expect(anon.code, anon.stderr).toBe(0);
    const plain = await echoscu(rx.handle.port, []);
    expect(plain.code, plain.stderr).toBe(0);
    // Plain DICOM on the TLS port is not TLS: refused.
    const plainOnTls = await echoscu(port, []);
    expect(plainOnTls.code).not.toBe(0);
  });

  it("stores a multi-series study sent with storescu +tls, datasets unchanged", async () => {
    const r = await storescu(rx.handle.tlsPort!, study.files, [...withClientCert(), "-aet", "TLSSCU"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(archivedFiles(rx.archive)).toHaveLength(study.files.length);
    for (const [i, file] of study.files.entries()) {
      const archived = path.join(
        rx.archive,
        `scp_${study.studyInstanceUid}`,
        `MR.${study.sopInstanceUids[i]}`,
      );
      expect(fs.existsSync(archived), archived).toBe(true);
      expect(await normalizedDump(archived)).toEqual(await normalizedDump(file));
    }
    const jobs = await rx.queue.getJobs(["waiting", "prioritized", "delayed", "active"]);
    expect(jobs.filter((j) => j.data.callingAe === "TLSSCU")).toHaveLength(study.files.length);
  });
});

describe("receiver TLS, client certificate required", () => {
  let rx: TestReceiver;
  beforeAll(async () => {
    rx = await tlsReceiver({ ca: certs.ca, verifyClient: true });
  });
  afterAll(async () => {
    await rx?.close();
  });

  it("admits a client with a CA-signed certificate, refuses untrusted and missing ones, and keeps serving", async () => {
    const port = rx.handle.tlsPort!;
    const good = await echoscu(port, withClientCert());
    expect(good.code, good.stderr).toBe(0);
    const rogue = await echoscu(port, withRogueCert());
    expect(rogue.code, "self-signed client certificate").not.toBe(0);
    const none = await echoscu(port, anonymous());
    expect(none.code, "no client certificate").not.toBe(0);
    // Refused during the handshake: no association was ever negotiated for them.
    expect(rx.handle.stats().associationsAccepted).toBe(1);
    const again = await echoscu(port, withClientCert());
    expect(again.code, again.stderr).toBe(0);
    const r = await storescu(port, study.files.slice(0, 2), withClientCert());
    expect(r.code, r.stderr).toBe(0);
    expect(archivedFiles(rx.archive)).toHaveLength(2);
  });
});

describe("receiver TLS, minVersion TLSv1.3", () => {
  let rx: TestReceiver;
  beforeAll(async () => {
    rx = await tlsReceiver({ minVersion: "TLSv1.3" });
  });
  afterAll(async () => {
    await rx?.close();
  });

  // dcmtk 3.6.7: the default profile (+py, non-downgrading BCP 195) negotiates TLS 1.3; the extended
  // BCP 195 profile (+pz) offers TLS 1.2 only (its cipher suites are TLS 1.2 suites).
  it("refuses a TLS 1.2-only client and admits a TLS 1.3 one", async () => {
    const port = rx.handle.tlsPort!;
    const tls13 = await echoscu(port, withClientCert());
    expect(tls13.code, tls13.stderr).toBe(0);
    const tls12 = await echoscu(port, withClientCert(), ["+pz"]);
    expect(tls12.code, "TLS 1.2-only client").not.toBe(0);
    expect(rx.handle.stats().associationsAccepted).toBe(1);
  });

  it("the TLS 1.2-only client itself works against a TLS 1.2 minimum (the refusal is the version)", async () => {
    const other = await tlsReceiver({});
    try {
      const r = await echoscu(other.handle.tlsPort!, withClientCert(), ["+pz"]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await other.close();
    }
  });
});
