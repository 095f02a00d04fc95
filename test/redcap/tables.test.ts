import { copyFileSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue, type IngestJob } from "../../src/queues/index.js";
import { RedcapClient } from "../../src/redcap/client.js";
import { CouplingRegistry } from "../../src/registry/coupling.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { capturedLogger, startFionaSim, type FionaSim } from "../support/redcap-sim.js";

const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-rct-${tag}-`));
let fs: FionaSim;
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let pacs: Storescp;
let transfers: TransferRegistry;
const logs = capturedLogger();
let fileProj: FionaConfig["projects"][number];

const user = (token: string, name: string) =>
  new RedcapClient({ url: fs.sim.url, token, redcapProject: name });
const incomingRows = (uid: string, instrument: string) =>
  fs.sim
    .project("incoming")
    .exportAll()
    .filter((r) => r.study_instance_uid === uid && r.redcap_repeat_instrument === instrument);

/** As test/support/pipeline.ts receiveLocally, with a chosen called AE title. */
async function receive(study: GeneratedStudy, calledAe = "FIONA") {
  const paths = new SitePaths(cfg.dataDir);
  const dir = paths.archiveStudyDir(study.studyInstanceUid);
  mkdirSync(dir, { recursive: true });
  const jobs: IngestJob[] = study.files.map((f, i) => {
    const dest = path.join(dir, `${study.modality}.${study.sopInstanceUids[i]}`);
    copyFileSync(f, dest);
    return {
      path: dest,
      callingAe: "SCANNER1",
      calledAe,
      peer: "127.0.0.1",
      receivedAt: new Date().toISOString(),
    };
  });
  const q = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
  await q.addBulk(jobs.map((data) => ({ name: QUEUES.ingest, data })));
  await q.close();
}

const doneTransfer = (uid: string, project: string) =>
  waitFor(
    async () => (await transfers.forStudy(uid)).find((t) => t.project === project && t.status === "done"),
    `transfer of ${uid} to ${project}`,
    60_000,
    200,
  );

const gen = (seed: string, patientId: string) =>
  generateStudy({
    outDir: tmp("gen"),
    seed,
    series: 1,
    instancesPerSeries: 2,
    fileSize: 2048,
    phi: { patientId },
  });

beforeAll(async () => {
  fs = await startFionaSim();
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  const dest = { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port };
  // The tables as REDCap users fill them, before FIONA starts.
  await user(fs.tokens.dataTransferProjects, "dataTransferProjects").importRecords([
    // REDCap wins: another participant pattern than the file's.
    { record_id: "PROJ", project_name: "PROJ", project_patient_naming: "RC_[0-9]{3}", project_active: "1" },
    // REDCap wins: auto-ID AE title (the file says FILEAE); the pattern stays the file's.
    {
      record_id: "AUTO",
      project_name: "AUTO",
      project_active: "1",
      project_use_autoid: "1",
      project_autoid_aetitle: "AUTOAE",
    },
    // Switched off in REDCap: left out of the configuration.
    { record_id: "OLD", project_name: "OLD", project_active: "0" },
    // Invalid: skipped with a log line naming the record.
    { record_id: "BROKEN", project_name: "BROKEN", project_patient_naming: "(unclosed", project_active: "1" },
  ]);
  await user(fs.tokens.routing, "routing").importRecords([
    {
      record_id: "7",
      routing_active: "1",
      routing_dest_project: "1", // label PROJ
      routing_incoming_aetitle: "FIONA",
      routing_allowed_patientid: "RC_",
      routing_event_name: "baseline",
    },
    // Invalid (no patient pattern): skipped.
    { record_id: "8", routing_active: "1", routing_dest_project: "1", routing_incoming_aetitle: "FIONA" },
  ]);
  await user(fs.tokens.coupling, "coupling").importRecords([
    { record_id: "1", cl_studyinstanceuid: "1.2.3.4.5", cl_projectname: "PROJ", cl_subjectid: "RC_900" },
    { record_id: "2", cl_studyinstanceuid: "1.2.3.4.6", cl_projectname: "PROJ", cl_subjectid: "not an id" },
  ]);
  cfg = testConfig({
    secret: "test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 300, attempts: 3, timeoutMs: 5000 },
    researchPacs: dest,
    projects: [
      { name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"], destination: dest },
      { name: "AUTO", autoId: { aeTitle: "FILEAE", pattern: "A_[0-9]{3}" } },
      { name: "OLD" },
    ],
    redcap: {
      url: fs.sim.url,
      retries: 1,
      syncIntervalSeconds: 5,
      projects: {
        incoming: { token: fs.tokens.incoming },
        routing: { token: fs.tokens.routing },
        coupling: { token: fs.tokens.coupling },
        dataTransferProjects: { token: fs.tokens.dataTransferProjects },
        autoId: { token: fs.tokens.autoId },
      },
    },
  });
  fileProj = cfg.projects[0]!;
  redis = new Redis(cfg.redis.url);
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
  workers = await startWorkers(cfg, logs.log, WORKER_QUEUES);
});

afterAll(async () => {
  fs?.sim.outage(undefined);
  await workers?.close();
  redis?.disconnect();
  await pacs?.stop();
  await fs?.sim.close();
  if (cfg) await cleanup(cfg);
});

describe("REDCap tables: DataTransferProjects, Routing, CouplingList, AutoID", () => {
  it("merges the pulled tables into the configuration, REDCap winning, without touching the file's objects", async () => {
    await waitFor(
      () => cfg.routing.rules.some((r) => r.name === "redcap:7"),
      "REDCap routing rule in the configuration",
      30_000,
      200,
    );
    const proj = cfg.projects.find((p) => p.name === "PROJ")!;
    expect(proj.participantPattern).toBe("RC_[0-9]{3}");
    expect(proj.destination?.port).toBe(pacs.port); // the file keeps the destination
    expect(fileProj.participantPattern).toBe("PROJ_[0-9]{4}"); // the file's object is unchanged
    expect(cfg.projects.find((p) => p.name === "AUTO")?.autoId).toEqual({
      aeTitle: "AUTOAE",
      pattern: "A_[0-9]{3}",
    });
    expect(cfg.projects.map((p) => p.name).sort()).toEqual(["AUTO", "PROJ"]); // OLD inactive, BROKEN invalid
    expect(cfg.routing.rules.map((r) => r.name)).toEqual(["redcap:7"]);
    const text = logs.text();
    expect(text).toMatch(/"recordId":"BROKEN"/);
    expect(text).toMatch(/"table":"Routing","recordId":"8"/);
    // Coupling rows go into the coupling registry as uploaded by "redcap"; the invalid one is skipped.
    const rows = await waitFor(
      async () => {
        const l = await new CouplingRegistry(redis, cfg.redis.prefix).list();
        return l.length ? l : undefined;
      },
      "coupling rows",
      30_000,
      200,
    );
    expect(rows).toEqual([
      expect.objectContaining({ studyInstanceUid: "1.2.3.4.5", participant: "RC_900", uploadedBy: "redcap" }),
    ]);
    expect(logs.text()).toMatch(/"table":"CouplingList","recordId":"2"/);
  });

  it("a routing rule of the Routing project sends a matching study to the research PACS with no person involved, and the result is written back", async () => {
    const before = readdirSync(pacs.dir).length;
    const study = gen("rc-route", "RC_123");
    await receive(study);
    const t = await doneTransfer(study.studyInstanceUid, "PROJ");
    expect(t).toMatchObject({ participant: "RC_123", event: "baseline", requestedBy: "routing" });
    expect(readdirSync(pacs.dir).length - before).toBe(2);
    const row = await waitFor(
      () => incomingRows(study.studyInstanceUid, "transfers").find((r) => r.transfer_date !== ""),
      "transfer result in Incoming",
      60_000,
      200,
    );
    expect(row).toMatchObject({
      transfer_project_name: "PROJ",
      transfer_name: "RC_123",
      transfer_event_name: "baseline",
      transfers_complete: "2",
    });
  });

  it("writes a participant ID issued by auto-ID to the AutoID table (hash, never the PatientID)", async () => {
    const study = gen("rc-auto", "AUTOPATIENT42");
    await receive(study, "AUTOAE");
    const t = await doneTransfer(study.studyInstanceUid, "AUTO");
    expect(t.participant).toMatch(/^A_[0-9]{3}$/);
    const row = await waitFor(
      () =>
        fs.sim
          .project("autoId")
          .exportAll()
          .find((r) => r.autoid_value === t.participant),
      "AutoID row",
      30_000,
      200,
    );
    expect(row).toMatchObject({ autoid_project_name: "AUTO", autoid_method: "1" });
    expect(String(row.autoid_hash)).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(fs.sim.project("autoId").exportAll())).not.toContain("AUTOPATIENT42");
  });

  it("REDCap failing (5xx) and then gone delays only the REDCap stages; nothing is lost and everything catches up", async () => {
    fs.sim.outage(503);
    const started = Date.now();
    const before = readdirSync(pacs.dir).length;
    const study = gen("rc-outage", "RC_456");
    await receive(study);
    // Ingest, routing (from the tables kept in Redis) and the transfer go on meanwhile.
    const t = await doneTransfer(study.studyInstanceUid, "PROJ");
    expect(t.participant).toBe("RC_456");
    expect(readdirSync(pacs.dir).length - before).toBe(2);
    expect(incomingRows(study.studyInstanceUid, "series")).toHaveLength(0);
    expect(cfg.routing.rules.map((r) => r.name)).toEqual(["redcap:7"]); // failed pulls keep the tables
    // Then REDCap goes away altogether (connections dropped).
    fs.sim.outage("down");
    await new Promise((r) => setTimeout(r, Math.max(0, 15_000 - (Date.now() - started))));
    expect(incomingRows(study.studyInstanceUid, "series")).toHaveLength(0);
    fs.sim.outage(undefined);
    // Back: the Incoming push and the result write-back arrive.
    await waitFor(
      () => incomingRows(study.studyInstanceUid, "series").length === 1,
      "Incoming push after the outage",
      90_000,
      500,
    );
    const row = await waitFor(
      () => incomingRows(study.studyInstanceUid, "transfers").find((r) => r.transfer_date !== ""),
      "result write-back after the outage",
      90_000,
      500,
    );
    expect(row).toMatchObject({ transfer_name: "RC_456", transfers_complete: "2" });
  }, 200_000);

  it("never logs a token", () => {
    for (const tok of Object.values(fs.tokens).filter((x): x is string => typeof x === "string"))
      expect(logs.text()).not.toContain(tok);
  });
});
