/**
 * sendFiles and cEcho with DICOM TLS against dcmtk storescp +tls, which requires and verifies a client
 * certificate (-rc, its default): what arrives must be the sent dataset byte for byte (+B), and a
 * server certificate that does not verify must stop the send before any data leaves.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { cEcho } from "../../src/dimse/echo.js";
import {
  RetryableSendError,
  SendError,
  parsePart10Meta,
  sendFiles,
  type StoreDestination,
} from "../../src/dimse/index.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { hasCommand, startStorescp, type Storescp } from "../support/peers.js";
import { makeTlsFixtures, type TlsFixtures } from "../support/tls.js";

const haveDcmtk = hasCommand("storescp");

describe.skipIf(!haveDcmtk)("sendFiles / cEcho over TLS -> storescp +tls", () => {
  let work: string;
  let certs: TlsFixtures;
  let study: GeneratedStudy;
  let peer: Storescp;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), "fiona-tls-send-"));
    certs = await makeTlsFixtures("tls-send");
    study = generateStudy({
      outDir: path.join(work, "in"),
      seed: "tls-send",
      series: 3,
      instancesPerSeries: 2,
      fileSize: 4096,
    });
    peer = await startStorescp(path.join(work, "out"), [
      "+xa",
      "+tls",
      certs.serverKey,
      certs.serverCert,
      "+cf",
      certs.ca,
      "-rc", // a client certificate is required and verified against the CA
    ]);
  });
  afterAll(async () => {
    await peer?.stop();
    certs?.remove();
    rmSync(work, { recursive: true, force: true });
  });

  const dest = (tls?: StoreDestination["tls"], host = "127.0.0.1"): StoreDestination => ({
    host,
    port: peer.port,
    calledAe: "RESEARCH",
    callingAe: "FIONA_TEST",
    timeoutMs: 5000,
    ...(tls && { tls }),
  });
  const mutualTls = () => ({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });

  const datasetOf = (file: string) => {
    const bytes = readFileSync(file);
    return bytes.subarray(parsePart10Meta(bytes).datasetOffset);
  };

  test("a multi-series study arrives byte-identical over one TLS association", async () => {
    const report = await sendFiles(dest(mutualTls()), study.files);
    expect(report.failed).toBe(0);
    expect(report.succeeded).toBe(study.files.length);
    expect(report.associations).toBe(1);
    // storescp names files "<modality>.<SOP Instance UID>".
    const received = new Map(
      readdirSync(peer.dir).map((n) => [n.slice(n.indexOf(".") + 1), path.join(peer.dir, n)]),
    );
    expect(received.size).toBe(study.files.length);
    for (const [i, file] of study.files.entries()) {
      const got = received.get(study.sopInstanceUids[i]!);
      expect(got, file).toBeDefined();
      expect(Buffer.compare(datasetOf(got!), datasetOf(file)), `dataset bytes of ${file}`).toBe(0);
    }
    await expect.poll(() => peer.output()).toMatch(/Association Release/);
  });

  test("cEcho with TLS succeeds, also naming the server by its certificate's DNS name", async () => {
    await cEcho(
      { host: "127.0.0.1", port: peer.port, calledAe: "RESEARCH", callingAe: "FIONA_TEST", tls: mutualTls() },
      5000,
    );
    await cEcho(
      { host: "localhost", port: peer.port, calledAe: "RESEARCH", callingAe: "FIONA_TEST", tls: mutualTls() },
      5000,
    );
  });

  test("plain TCP to the TLS port fails with a retryable error", async () => {
    const err = await sendFiles(dest(), study.files.slice(0, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableSendError);
  });

  // storescp listens on every loopback address; the certificate names only localhost and 127.0.0.1.
  test.each([
    [
      "no ca (system roots do not know our CA)",
      () => ({ cert: certs.clientCert, key: certs.clientKey }),
      "127.0.0.1",
    ],
    [
      "a ca that did not issue the server certificate",
      () => ({ ca: certs.rogueCert, cert: certs.clientCert, key: certs.clientKey }),
      "127.0.0.1",
    ],
    ["a host the certificate does not name", () => mutualTls(), "127.0.0.2"],
  ])(
    "the server certificate does not verify with %s: the send fails naming the certificate",
    async (_, tls, host) => {
      const before = readdirSync(peer.dir).length;
      const err = await sendFiles(dest(tls(), host), study.files.slice(0, 1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SendError);
      expect((err as Error).message).toMatch(/certificate/i);
      expect(readdirSync(peer.dir)).toHaveLength(before);
      await expect(
        cEcho({ host, port: peer.port, calledAe: "RESEARCH", callingAe: "FIONA_TEST", tls: tls() }, 5000),
      ).rejects.toThrow(/certificate/i);
    },
  );

  test("without a client certificate storescp (-rc) refuses the handshake", async () => {
    const err = await sendFiles(dest({ ca: certs.ca }), study.files.slice(0, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SendError);
  });
});
