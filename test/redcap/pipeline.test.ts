import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { RedcapClient } from "../../src/redcap/client.js";
import { sha256hex } from "../../src/redcap/sync.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";
import { capturedLogger, startFionaSim, type FionaSim } from "../support/redcap-sim.js";

const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-rc-${tag}-`));
let fs: FionaSim;
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let pacs: Storescp;
const logs = capturedLogger();

const incoming = () => fs.sim.project("incoming");
const rowsOf = (uid: string, instrument?: string) =>
  incoming()
    .exportAll()
    .filter(
      (r) =>
        r.study_instance_uid === uid &&
        (instrument === undefined || r.redcap_repeat_instrument === instrument),
    );

beforeAll(async () => {
  fs = await startFionaSim({ perProject: ["PROJ"] });
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  cfg = testConfig({
    secret: "test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 300, attempts: 3, timeoutMs: 5000 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        events: ["baseline"],
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
    redcap: {
      url: fs.sim.url,
      retries: 1,
      syncIntervalSeconds: 5,
      projects: {
        incoming: { token: fs.tokens.incoming },
        perProject: { PROJ: { token: fs.tokens.perProject.PROJ! } },
      },
    },
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, logs.log, WORKER_QUEUES);
});

afterAll(async () => {
  await workers?.close();
  redis?.disconnect();
  await pacs?.stop();
  await fs?.sim.close();
  if (cfg) await cleanup(cfg);
});

let study: GeneratedStudy;

describe("REDCap stages", () => {
  it("runs the REDCap queues with the pipeline when REDCap is configured", () => {
    expect(workers.queues).toEqual(expect.arrayContaining(["redcap-push", "redcap-sync"]));
  });

  it("pushes an arrived study to Incoming with one series repeat per series, patient name and ID hashed", async () => {
    study = generateStudy({
      outDir: tmp("gen"),
      seed: "rc-push",
      series: 2,
      instancesPerSeries: 3,
      fileSize: 4096,
    });
    await receiveLocally(cfg, redis, study, () => true, "SCANNER9");
    const series = await waitFor(
      () =>
        rowsOf(study.studyInstanceUid, "series").length === 2
          ? rowsOf(study.studyInstanceUid, "series")
          : undefined,
      "series rows",
      30_000,
    );
    const [base] = rowsOf(study.studyInstanceUid, "");
    expect(base).toMatchObject({
      study_aetitle_sender: "SCANNER9",
      study_aetitle_addressed: "FIONA",
      study_patient_name: sha256hex(study.phi.patientName),
      study_patient_id: sha256hex(study.phi.patientId),
      incoming_studies_complete: "2",
    });
    expect(series.map((s) => s.redcap_repeat_instance)).toEqual([1, 2]);
    expect(new Set(series.map((s) => s.series_instance_uid))).toEqual(new Set(study.seriesInstanceUids));
    expect(series.every((s) => s.series_num_files === "3" && s.series_complete === "2")).toBe(true);
    const all = JSON.stringify(incoming().exportAll());
    expect(all).not.toContain(study.phi.patientName);
    expect(all).not.toContain(study.phi.patientId);
  });

  it("starts a transfer requested in REDCap and writes the result back to its row", async () => {
    const before = readdirSync(pacs.dir).length;
    // The request as a REDCap user creates it.
    const user = new RedcapClient({ url: fs.sim.url, token: fs.tokens.incoming, redcapProject: "incoming" });
    await user.importRecords([
      {
        study_instance_uid: study.studyInstanceUid,
        redcap_repeat_instrument: "transfers",
        redcap_repeat_instance: "new",
        transfer_requested_date: "2026-01-01 10:00",
        transfer_project_name: "PROJ",
        transfer_name: "PROJ_0001",
        transfer_event_name: "baseline",
      },
    ]);
    const row = await waitFor(
      () => rowsOf(study.studyInstanceUid, "transfers").find((r) => r.transfer_date !== ""),
      "transfer result in REDCap",
      90_000,
      200,
    );
    expect(row).toMatchObject({
      redcap_repeat_instance: 1,
      transfers_complete: "2",
      transfer_error___2: "0",
      transfer_name: "PROJ_0001",
    });
    expect(String(row.transfer_mapped_uid)).toMatch(/^[0-9.]+$/);
    expect(row.transfer_mapped_uid).not.toBe(study.studyInstanceUid);
    expect(Number(row.transfer_active_proc_time)).toBeGreaterThanOrEqual(0);
    expect(readdirSync(pacs.dir).length - before).toBe(6);
    // The next pulls see no open request: nothing is sent again.
    await new Promise((r) => setTimeout(r, 6000));
    expect(readdirSync(pacs.dir).length - before).toBe(6);
    expect(rowsOf(study.studyInstanceUid, "transfers")).toHaveLength(1);
    // The research project's own REDCap: participant record and an imaging repeat with the pseudonym UID.
    const proj = fs.sim.project("project:PROJ").exportAll();
    expect(
      proj.find((r) => r.redcap_event_name === "baseline_arm_1" && r.redcap_repeat_instrument === ""),
    ).toMatchObject({
      record_id: "PROJ_0001",
      first_name: "PROJ_0001",
    });
    expect(proj.filter((r) => r.redcap_repeat_instrument === "imaging")).toEqual([
      expect.objectContaining({
        record_id: "PROJ_0001",
        redcap_event_name: "event_1_arm_1",
        redcap_repeat_instance: 1,
        img_study_instance_uid: row.transfer_mapped_uid,
        img_event_name: "baseline",
      }),
    ]);
  });

  it("writes the result of a transfer started outside REDCap as a new request row", async () => {
    const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
    try {
      await startTransfer(
        {
          cfg,
          paths: new SitePaths(cfg.dataDir),
          flow,
          transfers: new TransferRegistry(redis, cfg.redis.prefix),
        },
        {
          studyInstanceUid: study.studyInstanceUid,
          project: "PROJ",
          participant: "PROJ_0002",
          requestedBy: "test",
        },
      );
    } finally {
      await flow.close();
    }
    const row = await waitFor(
      () =>
        rowsOf(study.studyInstanceUid, "transfers").find(
          (r) => r.transfer_name === "PROJ_0002" && r.transfer_date !== "",
        ),
      "second result",
      60_000,
      200,
    );
    expect(row).toMatchObject({
      redcap_repeat_instance: 2,
      transfer_project_name: "PROJ",
      transfers_complete: "2",
    });
  });

  it("answers an invalid REDCap request with an error instead of pulling it forever", async () => {
    const user = new RedcapClient({ url: fs.sim.url, token: fs.tokens.incoming, redcapProject: "incoming" });
    await user.importRecords([
      {
        study_instance_uid: study.studyInstanceUid,
        redcap_repeat_instrument: "transfers",
        redcap_repeat_instance: "new",
        transfer_project_name: "NOSUCH",
        transfer_name: "X1",
      },
    ]);
    const row = await waitFor(
      () =>
        rowsOf(study.studyInstanceUid, "transfers").find(
          (r) => r.transfer_project_name === "NOSUCH" && r.transfer_date !== "",
        ),
      "error answer",
      30_000,
      200,
    );
    expect(row).toMatchObject({ transfers_complete: "1", transfer_error___1: "1" });
    expect(String(row.transfer_error_message)).toContain("unknown project NOSUCH");
  });

  it("never puts the token into logs or Redis (job data, failure reasons)", async () => {
    expect(logs.text()).not.toContain(fs.tokens.incoming);
    expect(logs.text()).not.toContain(fs.tokens.perProject.PROJ!);
    const keys = await redis.keys(`${cfg.redis.prefix}:*`);
    for (const k of keys) {
      const type = await redis.type(k);
      const v =
        type === "hash"
          ? JSON.stringify(await redis.hgetall(k))
          : type === "string"
            ? await redis.get(k)
            : type === "list"
              ? JSON.stringify(await redis.lrange(k, 0, -1))
              : "";
      expect(v ?? "", k).not.toContain(fs.tokens.incoming);
    }
  });
});
