/**
 * The client roles over DICOM TLS against another implementation: Orthanc with DicomTlsEnabled and a
 * required client certificate. The sender stores a study, C-FIND (dcmjs-dimse with its securityOptions)
 * finds it, C-ECHO answers; the same C-FIND without TLS gets no answer.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cEcho } from "../../src/dimse/echo.js";
import { FindError, cFind, type FindDestination } from "../../src/dimse/find.js";
import { sendFiles } from "../../src/dimse/index.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { ORTHANC, startOrthanc, type Orthanc } from "../support/peers.js";
import { makeTlsFixtures, type TlsFixtures } from "../support/tls.js";

describe.skipIf(!existsSync(ORTHANC))("client roles over TLS -> Orthanc with DICOM TLS", () => {
  let work: string;
  let certs: TlsFixtures;
  let study: GeneratedStudy;
  let orthanc: Orthanc;
  const dest = (tls: boolean): FindDestination => ({
    host: "127.0.0.1",
    port: orthanc.dicomPort,
    calledAe: "RESEARCH",
    callingAe: "FIONA_TEST",
    ...(tls && { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } }),
  });

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), "fiona-tls-orthanc-"));
    certs = await makeTlsFixtures("tls-orthanc");
    study = generateStudy({
      outDir: path.join(work, "in"),
      seed: "tls-orthanc",
      series: 2,
      instancesPerSeries: 2,
      fileSize: 4096,
    });
    orthanc = await startOrthanc(path.join(work, "orthanc"), {
      DicomAlwaysAllowFind: true,
      DicomTlsEnabled: true,
      DicomTlsCertificate: certs.serverCert,
      DicomTlsPrivateKey: certs.serverKey,
      DicomTlsTrustedCertificates: certs.ca,
      DicomTlsRemoteCertificateRequired: true,
    });
  }, 60_000);

  afterAll(async () => {
    await orthanc?.stop();
    await certs?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("stores a study, finds it with C-FIND and answers C-ECHO, all over TLS", async () => {
    const report = await sendFiles({ ...dest(true), timeoutMs: 10_000 }, study.files);
    expect(report.succeeded).toBe(study.files.length);
    const found = await cFind(dest(true), "STUDY", {
      StudyInstanceUID: study.studyInstanceUid,
      NumberOfStudyRelatedInstances: "",
    });
    expect(found.status).toBe("success");
    expect(found.matches.map((m) => m.StudyInstanceUID)).toEqual([study.studyInstanceUid]);
    await cEcho(dest(true), 5000);
  });

  it("gets no answer from the TLS port without TLS", async () => {
    const err = await cFind(dest(false), "STUDY", { StudyInstanceUID: "" }, { timeoutMs: 3000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FindError);
  });
});
