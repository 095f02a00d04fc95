/**
 * dcmqrscp (dcmtk) as the research PACS: the inventory path over a Q/R SCP that matches only the keys
 * of its index. It ignores InstitutionName and returns no NumberOfStudyRelated* counts, so every study
 * it holds is listed under the project and the counts stay unknown. It never refuses an answer, so
 * bucket splitting is covered by the Orthanc test.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { cFind } from "../../src/dimse/find.js";
import type { ProjectInventory } from "../../src/inventory/store.js";
import { cleanup, freePort, testConfig } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startDcmqrscp, type Dcmqrscp } from "../support/peers.js";

const run = promisify(execFile);
const gen = mkdtempSync(path.join(tmpdir(), "fiona-inv-qr-gen-"));
const studies = ["QR_0001", "QR_0002"].map((patientId) =>
  generateStudy({
    outDir: path.join(gen, patientId),
    seed: `inventory-qr-${patientId}`,
    modality: "CT",
    series: 1,
    instancesPerSeries: 3,
    fileSize: 2048,
    phi: { patientId, institutionName: "QR" },
  }),
);

let qr: Dcmqrscp;
let cfg: FionaConfig;
let configFile: string;

beforeAll(async () => {
  qr = await startDcmqrscp(mkdtempSync(path.join(tmpdir(), "fiona-inv-qr-")));
  for (const s of studies)
    await run("storescu", ["-aec", "RESEARCH", "+sd", "+r", "127.0.0.1", String(qr.port), s.dir], {
      env: { ...process.env, TCP_NODELAY: "1" },
    });
  cfg = testConfig({
    projects: [{ name: "QR" }],
    inventory: { pacs: { aeTitle: "RESEARCH", host: "127.0.0.1", port: qr.port }, pauseMs: 0 },
  });
  configFile = path.join(cfg.dataDir, "fiona.config.json");
  writeFileSync(configFile, JSON.stringify(cfg));
}, 30_000);

afterAll(async () => {
  await qr?.stop();
  if (cfg) await cleanup(cfg);
});

describe("research PACS inventory (dcmqrscp)", () => {
  it("lists the studies with their PatientID, date and modality (fiona inventory --refresh)", async () => {
    const { stdout } = await run(process.execPath, [
      "bin/fiona.js",
      "--config",
      configFile,
      "inventory",
      "--project",
      "QR",
      "--json",
      "--show-phi",
      "--refresh",
    ]);
    const { inventory } = JSON.parse(stdout) as { inventory: ProjectInventory };
    expect(inventory).toMatchObject({ complete: true, queries: 1 });
    const byUid = new Map(inventory.studies.map((s) => [s.studyInstanceUid, s]));
    expect([...byUid.keys()].sort()).toEqual(studies.map((s) => s.studyInstanceUid).sort());
    const first = byUid.get(studies[0]!.studyInstanceUid)!;
    expect(first.patientId).toBe("QR_0001");
    expect(first.studyDate).toMatch(/^\d{8}$/);
    expect(first.numberOfSeries).toBeUndefined();
  }, 30_000);

  it("answers a C-FIND at SERIES level; a wrong AE title is a permanent error, no listener a retryable one", async () => {
    const dest = { host: "127.0.0.1", port: qr.port, calledAe: "RESEARCH", callingAe: "FIONA" };
    const uid = studies[1]!.studyInstanceUid;
    const r = await cFind(dest, "SERIES", { StudyInstanceUID: uid, SeriesInstanceUID: "" });
    expect(r.status).toBe("success");
    expect(r.matches.map((m) => m.SeriesInstanceUID)).toEqual(studies[1]!.seriesInstanceUids);
    await expect(
      cFind({ ...dest, calledAe: "NOBODY" }, "STUDY", { StudyInstanceUID: "" }),
    ).rejects.toMatchObject({
      name: "FindError",
      retryable: false,
    });
    await expect(
      cFind({ ...dest, port: await freePort() }, "STUDY", { StudyInstanceUID: "" }),
    ).rejects.toMatchObject({
      name: "FindError",
      retryable: true,
    });
  });

  it("gives up on a peer that accepts the connection and never answers", async () => {
    const silent = net.createServer(() => {}).listen(0, "127.0.0.1");
    await once(silent, "listening");
    const port = (silent.address() as net.AddressInfo).port;
    const started = Date.now();
    try {
      await expect(
        cFind(
          { host: "127.0.0.1", port, calledAe: "RESEARCH", callingAe: "FIONA" },
          "STUDY",
          {},
          { timeoutMs: 300 },
        ),
      ).rejects.toMatchObject({ name: "FindError", retryable: true });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.close();
    }
  });
});
