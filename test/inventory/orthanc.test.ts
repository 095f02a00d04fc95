/**
 * The inventory against Orthanc as the research PACS. With LimitFindResults Orthanc answers a larger
 * C-FIND with its first matches and a final Cancel status (1.10 does not refuse outright), which the
 * crawl treats as a refusal and splits by PatientID. Reconciliation both ways, the WhatIsInIDS7 push to
 * the REDCap simulator and `fiona inventory` on the stored result.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { WHAT_IS_IN_IDS7_FIELDS } from "../../src/inventory/redcap.js";
import type { Reconciliation } from "../../src/inventory/reconcile.js";
import type { ProjectInventory } from "../../src/inventory/store.js";
import { createLogger } from "../../src/log.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { RedcapClient } from "../../src/redcap/client.js";
import { startRedcapSimulator, type RedcapSimulator } from "../../dev/redcap/simulator.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startWeb } from "../../src/web/server.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { asTestAdmin, testAdminUser } from "../web/helpers.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startOrthanc, type Orthanc } from "../support/peers.js";
import { newToken } from "../support/redcap-sim.js";

const run = promisify(execFile);
const NODELAY = { ...process.env, TCP_NODELAY: "1" };
const gen = mkdtempSync(path.join(tmpdir(), "fiona-inv-gen-"));

/** A study of `institution` for participant `patientId`: 2 series of 2 instances. */
const make = (patientId: string, institution = "PROJ"): GeneratedStudy =>
  generateStudy({
    outDir: path.join(gen, patientId),
    seed: `inventory-${patientId}`,
    modality: "MR",
    series: 2,
    instancesPerSeries: 2,
    fileSize: 2048,
    phi: { patientId, patientName: patientId, institutionName: institution },
  });

// Three IDs end in 1, so the "*1" bucket is refused too (limit 2) and splits into "*11", "*21", "*31".
const split = ["PROJ_0011", "PROJ_0021", "PROJ_0031"].map((id) => make(id));
const kept = make("PROJ_0002");
const deleted = make("PROJ_0003");
const other = make("OTHER_0004", "OTHER");

let orthanc: Orthanc;
let sim: RedcapSimulator;
let token: string;
let cfg: FionaConfig;
let configFile: string;
let redis: Redis;
let workers: WorkersHandle;

async function store(s: GeneratedStudy) {
  await run("storescu", ["-aec", "RESEARCH", "+sd", "+r", "127.0.0.1", String(orthanc.dicomPort), s.dir], {
    env: NODELAY,
  });
}

async function deleteFromOrthanc(studyUid: string) {
  const found = (await (
    await fetch(`${orthanc.url}/tools/lookup`, { method: "POST", body: studyUid })
  ).json()) as Array<{
    ID: string;
  }>;
  const res = await fetch(`${orthanc.url}/studies/${found[0]!.ID}`, { method: "DELETE" });
  expect(res.ok).toBe(true);
}

async function cli(configPath: string, ...args: string[]) {
  const { stdout } = await run(process.execPath, [
    "bin/fiona.js",
    "--config",
    configPath,
    "inventory",
    ...args,
  ]);
  return JSON.parse(stdout) as { inventory: ProjectInventory; reconciliation: Reconciliation };
}

const ids7 = () => new RedcapClient({ url: sim.url, token, redcapProject: "whatIsInIds7" });

beforeAll(async () => {
  orthanc = await startOrthanc(mkdtempSync(path.join(tmpdir(), "fiona-inv-orthanc-")), {
    DicomAlwaysAllowFind: true,
    LimitFindResults: 2,
  });
  for (const s of [...split, kept, deleted, other]) await store(s);
  token = newToken();
  sim = await startRedcapSimulator({
    projects: [{ name: "whatIsInIds7", token, fields: WHAT_IS_IN_IDS7_FIELDS }],
    banThreshold: 0,
  });
  cfg = testConfig({
    projects: [{ name: "PROJ" }, { name: "OTHER" }],
    web: { users: [testAdminUser] },
    researchPacs: { aeTitle: "RESEARCH", host: "127.0.0.1", port: orthanc.dicomPort },
    inventory: { projects: ["PROJ"], pauseMs: 0 },
    redcap: { url: sim.url, projects: { whatIsInIds7: { token } } },
  });
  configFile = path.join(cfg.dataDir, "fiona.config.json");
  writeFileSync(configFile, JSON.stringify(cfg));
  redis = new Redis(cfg.redis.url);

  // FIONA "sent" two studies (their UIDs as the PACS holds them); one of them is then deleted there.
  const transfers = new TransferRegistry(redis, cfg.redis.prefix);
  for (const [i, s] of [kept, deleted].entries()) {
    const id = `${i + 1}`.repeat(16);
    const request = {
      studyInstanceUid: `1.2.3.${i}`,
      project: "PROJ",
      participant: `P${i}`,
      requestedBy: "test",
    };
    await transfers.startRun(id, request, 4);
    await transfers.finishRun(id, {
      status: "done",
      pseudoStudyInstanceUid: s.studyInstanceUid,
      filesSent: 4,
      filesFailed: 0,
      filesDropped: 0,
      durationMs: 10,
    });
  }
  await deleteFromOrthanc(deleted.studyInstanceUid);

  // WhatIsInIDS7 already lists the deleted study (an earlier crawl) and a study of another project.
  await ids7().importRecords([
    { record_id: deleted.studyInstanceUid, ids7_institution_name: "PROJ" },
    { record_id: other.studyInstanceUid, ids7_institution_name: "OTHER" },
  ]);
  workers = await startWorkers(cfg, createLogger("silent"), [QUEUES.inventory]);
}, 60_000);

afterAll(async () => {
  await workers?.close();
  redis?.disconnect();
  await Promise.all([orthanc?.stop(), sim?.close()]);
  if (cfg) await cleanup(cfg);
});

describe("research PACS inventory (Orthanc)", () => {
  it("crawls with PatientID buckets, reconciles both ways and mirrors the result into WhatIsInIDS7", async () => {
    const q = createQueue(QUEUES.inventory, redis, cfg.redis.prefix);
    const job = await q.add("crawl", { kind: "crawl" });
    await waitFor(async () => (await job.isCompleted()) || undefined, "inventory crawl", 60_000);
    await q.close();

    const { inventory, reconciliation } = await cli(configFile, "--project", "PROJ", "--json", "--show-phi");
    const expected = [...split, kept].map((s) => s.studyInstanceUid).sort();
    expect(inventory.complete).toBe(true);
    expect(inventory.studies.map((s) => s.studyInstanceUid).sort()).toEqual(expected);
    // "", 37 single-character buckets, 37 below "*1".
    expect(inventory.queries).toBe(75);
    for (const s of inventory.studies)
      expect(s).toMatchObject({
        numberOfSeries: 2,
        numberOfInstances: 4,
        institutionName: "PROJ",
        modalities: "MR",
      });
    expect(inventory.studies.find((s) => s.studyInstanceUid === kept.studyInstanceUid)?.patientId).toBe(
      "PROJ_0002",
    );

    expect(reconciliation.missingInPacs.map((s) => s.studyInstanceUid)).toEqual([deleted.studyInstanceUid]);
    expect(reconciliation.notSentByFiona.map((s) => s.studyInstanceUid).sort()).toEqual(
      split.map((s) => s.studyInstanceUid).sort(),
    );

    const records = await ids7().exportRecords();
    const byId = new Map(records.map((r) => [String(r.record_id), r]));
    expect([...byId.keys()].sort()).toEqual([...expected, other.studyInstanceUid].sort());
    expect(byId.get(kept.studyInstanceUid)).toMatchObject({
      ids7_patient_id: "PROJ_0002",
      ids7_patient_name: "PROJ_0002",
      ids7_number_of_series: "2",
      ids7_number_of_instances: "4",
      ids7_institution_name: "PROJ",
      ids7_modalities: "MR",
      ids7_date_stamp: inventory.crawledAt,
    });
  }, 90_000);

  it("reconciles again when transfers change, and serves the result without identity on the API", async () => {
    const transfers = new TransferRegistry(redis, cfg.redis.prefix);
    const id = "3".repeat(16);
    await transfers.startRun(
      id,
      { studyInstanceUid: "1.2.3.9", project: "PROJ", participant: "P9", requestedBy: "test" },
      4,
    );
    await transfers.finishRun(id, {
      status: "done",
      pseudoStudyInstanceUid: split[0]!.studyInstanceUid,
      filesSent: 4,
      filesFailed: 0,
      filesDropped: 0,
      durationMs: 10,
    });
    const q = createQueue(QUEUES.inventory, redis, cfg.redis.prefix);
    const job = await q.add("reconcile", { kind: "reconcile", project: "PROJ" });
    await waitFor(async () => (await job.isCompleted()) || undefined, "reconcile", 30_000);
    await q.close();

    const web = await startWeb({
      config: cfg,
      connection: redis,
      logger: createLogger("silent"),
      port: 0,
      host: "127.0.0.1",
    });
    try {
      const r = await fetch(`${web.url}/api/inventory/PROJ`, { headers: asTestAdmin });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { inventory: ProjectInventory; reconciliation: Reconciliation };
      expect(body.reconciliation.notSentByFiona.map((s) => s.studyInstanceUid).sort()).toEqual(
        split
          .slice(1)
          .map((s) => s.studyInstanceUid)
          .sort(),
      );
      expect(body.inventory.studies).toHaveLength(4);
      expect(JSON.stringify(body)).not.toContain("PROJ_00");
      expect((await fetch(`${web.url}/api/inventory/OTHER`, { headers: asTestAdmin })).status).toBe(404);
    } finally {
      await web.close();
    }
  });

  it("marks a crawl whose buckets stay refused at the maximum depth incomplete (fiona inventory --refresh)", async () => {
    const shallow = path.join(cfg.dataDir, "shallow.config.json");
    writeFileSync(shallow, JSON.stringify({ ...cfg, inventory: { ...cfg.inventory, bucketDepth: 1 } }));
    const stale = "2.25.1234";
    await ids7().importRecords([{ record_id: stale, ids7_institution_name: "PROJ" }]);
    const { inventory, reconciliation } = await cli(shallow, "--project", "PROJ", "--json", "--refresh");
    expect(inventory.complete).toBe(false);
    expect(inventory.incompleteBuckets).toEqual(["*1"]);
    expect(inventory.queries).toBe(38);
    expect(reconciliation.complete).toBe(false);
    // Orthanc sent the first two of the three "*1" studies before cancelling: they are listed.
    expect(inventory.studies.map((s) => s.studyInstanceUid)).toContain(kept.studyInstanceUid);
    expect(inventory.studies.length).toBeGreaterThanOrEqual(3);
    // What it found is imported, but nothing is deleted on the strength of an incomplete list.
    const ids = (await ids7().exportRecords({ fields: ["record_id"] })).map((r) => String(r.record_id));
    expect(ids).toContain(stale);
    expect(ids).toEqual(expect.arrayContaining(inventory.studies.map((s) => s.studyInstanceUid)));
  }, 60_000);
});
