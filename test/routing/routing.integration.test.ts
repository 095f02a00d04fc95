/**
 * Automatic assignment end to end, with the workers in-process and storescp as the research PACS:
 * routing rules, a coupling list uploaded before and after arrival, and an auto-ID AE title each lead
 * to completed transfers without anyone assigning the study, with the right participant in the files.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { FlowProducer } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { uploadCouplingList } from "../../src/routing/coupling-upload.js";
import { createRoutingDeps, type RoutingDeps } from "../../src/routing/deps.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy, type PhiMarkers } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";

const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-routing-${tag}-`));
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let flow: FlowProducer;
let transfers: TransferRegistry;
let studies: StudyRegistry;
let routing: RoutingDeps;
let pacs: Storescp;
const logLines: string[] = [];

const HEADER = "AccessionNumber,ProjectName,subjectid,eventname";

/** As the receiver would: archive the files and queue their ingest jobs, with the given AE titles. */
async function receive(study: GeneratedStudy, calledAe = "FIONA", callingAe = "SCANNER1") {
  const paths = new SitePaths(cfg.dataDir);
  const dir = paths.archiveStudyDir(study.studyInstanceUid);
  mkdirSync(dir, { recursive: true });
  const jobs = study.files.map((f, i) => {
    const dest = path.join(dir, `${study.modality}.${study.sopInstanceUids[i]}`);
    copyFileSync(f, dest);
    return { path: dest, callingAe, calledAe, peer: "127.0.0.1", receivedAt: new Date().toISOString() };
  });
  const q = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
  await q.addBulk(jobs.map((data) => ({ name: QUEUES.ingest, data })));
  await q.close();
}

function generate(seed: string, phi: Partial<PhiMarkers>, instances = 3): GeneratedStudy {
  return generateStudy({
    outDir: tmp("gen"),
    seed,
    series: 1,
    instancesPerSeries: instances,
    fileSize: 2048,
    phi,
  });
}

/** The study's transfers once every one of them (at least `count`) has finished. */
async function finishedTransfers(studyUid: string, count = 1): Promise<TransferRecord[]> {
  return waitFor(
    async () => {
      const ts = await transfers.forStudy(studyUid);
      return ts.length >= count && ts.every((t) => t.status !== "queued") ? ts : undefined;
    },
    "automatic transfers to finish",
    60_000,
    100,
  );
}

/** Wait until the study's first study-arrived job (which runs routing) has completed. */
async function arrived(studyUid: string) {
  const q = createQueue(QUEUES.studyArrived, redis, cfg.redis.prefix);
  try {
    await waitFor(
      async () => (await (await q.getJob(`${studyUid}-1`))?.isCompleted()) || undefined,
      "arrival",
      30_000,
    );
  } finally {
    await q.close();
  }
  expect((await studies.get(studyUid))?.status).toBe("arrived");
}

/** PatientID and StudyInstanceUID of every file the PACS received, read with dcmdump. */
function received(): Array<{ file: string; patientId?: string; studyUid?: string; dump: string }> {
  return readdirSync(pacs.dir).map((f) => {
    const file = path.join(pacs.dir, f);
    const dump = execFileSync("dcmdump", ["-q", file], { encoding: "utf8" });
    return {
      file,
      patientId: /\(0010,0020\) LO \[([^\]]*)\]/.exec(dump)?.[1],
      studyUid: /\(0020,000d\) UI \[([0-9.]+)\]/.exec(dump)?.[1],
      dump,
    };
  });
}

function filesOf(t: TransferRecord) {
  return received().filter((r) => r.studyUid === t.pseudoStudyInstanceUid);
}

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  const destination = { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port };
  cfg = testConfig({
    secret: "routing-test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 300, attempts: 5, timeoutMs: 5000 },
    log: { level: "debug" },
    projects: [
      { name: "ROUTE", participantPattern: "RT[0-9]{3}", events: ["scan1"], destination },
      { name: "COUPLE", participantPattern: "CP_[0-9]{4}", events: ["baseline", "followup"], destination },
      { name: "COUPLE2", destination },
      {
        name: "AUTO",
        participantPattern: "AU_[0-9]{4}",
        autoId: { aeTitle: "AUTOID", pattern: "AU_[0-9]{4}" },
        destination,
      },
    ],
    routing: {
      rules: [
        { name: "router", callingAe: "ROUTER1", patientId: "RT[0-9]{3}$", project: "ROUTE", event: "scan1" },
      ],
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: "debug" }, sink);
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
  studies = new StudyRegistry(redis, cfg.redis.prefix);
  routing = createRoutingDeps({ cfg, paths: new SitePaths(cfg.dataDir), flow, transfers, log }, redis);
});

afterAll(async () => {
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  if (cfg) await cleanup(cfg);
});

describe("automatic assignment", () => {
  it("routes a study by rule (calling AE + PatientID) with the PatientID as participant", async () => {
    const study = generate("route-1", { patientId: "RT042", accessionNumber: "ACCROUTE1" });
    await receive(study, "FIONA", "ROUTER1");
    const [t] = await finishedTransfers(study.studyInstanceUid);
    expect(t).toMatchObject({
      status: "done",
      requestedBy: "routing",
      project: "ROUTE",
      participant: "RT042",
      event: "scan1",
      filesSent: 3,
    });
    const files = filesOf(t!);
    expect(files).toHaveLength(3);
    for (const f of files) {
      expect(f.patientId).toBe("RT042");
      expect(f.dump).toContain("[EventName:scan1]");
    }
    // The same sender with a PatientID the rule does not match is left for a person.
    const other = generate("route-2", { patientId: "XY042", accessionNumber: "ACCROUTE2" });
    await receive(other, "FIONA", "ROUTER1");
    await arrived(other.studyInstanceUid);
    expect(await transfers.forStudy(other.studyInstanceUid)).toEqual([]);
  });

  it("applies a coupling list uploaded before the study arrives", async () => {
    const study = generate("couple-before", { accessionNumber: "ACCBEFORE1" });
    const upload = await uploadCouplingList(
      routing,
      `${HEADER}\nACCBEFORE1,COUPLE,CP_0001,baseline\n`,
      "alice",
    );
    expect(upload).toMatchObject({ stored: 1, errors: [], matchedNow: [] });
    await receive(study);
    const [t] = await finishedTransfers(study.studyInstanceUid);
    expect(t).toMatchObject({
      status: "done",
      requestedBy: "coupling",
      project: "COUPLE",
      participant: "CP_0001",
      event: "baseline",
    });
    const files = filesOf(t!);
    expect(files).toHaveLength(3);
    for (const f of files) expect(f.patientId).toBe("CP_0001");
  });

  it("applies a coupling list uploaded after arrival, to every matching row, with a dry-run preview first", async () => {
    const study = generate("couple-after", { accessionNumber: "ACCAFTER1" });
    await receive(study);
    await arrived(study.studyInstanceUid);
    expect(await transfers.forStudy(study.studyInstanceUid)).toEqual([]);
    const csv = `${HEADER},StudyInstanceUID\nACCAFTER1,COUPLE,CP_0002,followup,\n,COUPLE2,other-7,,${study.studyInstanceUid}\n`;

    const preview = await uploadCouplingList(routing, csv, "alice", { dryRun: true });
    expect(preview.stored).toBe(0);
    expect(preview.matchedNow.map((m) => [m.studyInstanceUid, m.project, m.participant, m.status])).toEqual([
      [study.studyInstanceUid, "COUPLE", "CP_0002", "planned"],
      [study.studyInstanceUid, "COUPLE2", "other-7", "planned"],
    ]);
    expect(await transfers.forStudy(study.studyInstanceUid)).toEqual([]);

    const upload = await uploadCouplingList(routing, csv, "alice");
    expect(upload.stored).toBe(2);
    expect(upload.matchedNow.map((m) => m.status)).toEqual(["started", "started"]);
    const ts = await finishedTransfers(study.studyInstanceUid, 2);
    const byProject = Object.fromEntries(ts.map((t) => [t.project, t]));
    expect(byProject.COUPLE).toMatchObject({
      status: "done",
      participant: "CP_0002",
      event: "followup",
      requestedBy: "coupling",
    });
    expect(byProject.COUPLE2).toMatchObject({
      status: "done",
      participant: "other-7",
      requestedBy: "coupling",
    });
    for (const f of filesOf(byProject.COUPLE!)) expect(f.patientId).toBe("CP_0002");
    for (const f of filesOf(byProject.COUPLE2!)) expect(f.patientId).toBe("other-7");

    // Uploading the same list again starts nothing: those requests already ran for these images.
    const again = await uploadCouplingList(routing, csv, "bob");
    expect(again.matchedNow.map((m) => m.status)).toEqual(["exists", "exists"]);
    expect((await transfers.forStudy(study.studyInstanceUid)).map((t) => t.runs)).toEqual([1, 1]);
  });

  it("rejects a coupling list with errors as a whole", async () => {
    const res = await uploadCouplingList(
      routing,
      `${HEADER}\nACCX,COUPLE,CP_0003,\nACCY,COUPLE,wrong,\n`,
      "alice",
    );
    expect(res.stored).toBe(0);
    expect(res.errors).toEqual([expect.objectContaining({ line: 3, column: "subjectid" })]);
  });

  it("gives studies sent to the auto-ID AE title a random participant ID, the same for the same patient", async () => {
    const phi = { patientId: "REALPID-AUTO-991", patientName: "AUTOPAT^REAL", accessionNumber: "ACCAUTO1" };
    const first = generate("auto-1", phi);
    await receive(first, "AUTOID", "SCANNER1");
    const [t1] = await finishedTransfers(first.studyInstanceUid);
    expect(t1).toMatchObject({ status: "done", requestedBy: "autoid", project: "AUTO", filesSent: 3 });
    expect(t1!.participant).toMatch(/^AU_[0-9]{4}$/);
    for (const f of filesOf(t1!)) expect(f.patientId).toBe(t1!.participant);

    const second = generate("auto-2", { ...phi, accessionNumber: "ACCAUTO2" }, 2);
    await receive(second, "AUTOID", "SCANNER1");
    const [t2] = await finishedTransfers(second.studyInstanceUid);
    expect(t2).toMatchObject({ status: "done", requestedBy: "autoid", participant: t1!.participant });

    const stranger = generate("auto-3", { patientId: "REALPID-AUTO-992", accessionNumber: "ACCAUTO3" }, 1);
    await receive(stranger, "AUTOID", "SCANNER1");
    const [t3] = await finishedTransfers(stranger.studyInstanceUid);
    expect(t3!.participant).toMatch(/^AU_[0-9]{4}$/);
    expect(t3!.participant).not.toBe(t1!.participant);
  });

  it("keeps patient identity out of Redis and accession numbers out of the logs", async () => {
    const keys = await redis.keys(`${cfg.redis.prefix}:*`);
    const values: string[] = [];
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === "string") values.push((await redis.get(key)) ?? "");
      else if (type === "hash") values.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === "set") values.push(JSON.stringify(await redis.smembers(key)));
      else if (type === "zset") values.push(JSON.stringify(await redis.zrange(key, 0, -1)));
      else if (type === "list") values.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === "stream") values.push(JSON.stringify(await redis.xrange(key, "-", "+")));
    }
    const all = keys.join("\n") + values.join("\n");
    // Accession numbers too: the incoming list and coupling rows keep keyed digests of them only.
    for (const phi of [
      "REALPID-AUTO-991",
      "REALPID-AUTO-992",
      "AUTOPAT",
      "PHIMARK^PATIENTNAME",
      "19010203",
      "ACCROUTE1",
      "ACCBEFORE1",
      "ACCAFTER1",
      "ACCAUTO1",
    ]) {
      expect(all, `${phi} found in Redis`).not.toContain(phi);
    }

    const logs = logLines.join("");
    expect(logs).toContain("transfer started automatically");
    expect(logs).toContain("coupling list uploaded");
    for (const phi of [
      "ACCROUTE1",
      "ACCBEFORE1",
      "ACCAFTER1",
      "ACCAUTO1",
      "REALPID-AUTO-991",
      "AUTOPAT",
      "PHIMARK^PATIENTNAME",
    ]) {
      expect(logs, `${phi} found in the logs`).not.toContain(phi);
    }
  });
});
