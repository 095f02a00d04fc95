import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { FlowProducer } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy, PRIVATE_CREATORS, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-xfer-${tag}-`));
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let flow: FlowProducer;
let transfers: TransferRegistry;
let pacs: Storescp;
let downPort: number;

const received = (dir: string) => readdirSync(dir).map((f) => path.join(dir, f));

function assertNoPhi(file: string, study: GeneratedStudy) {
  const bytes = readFileSync(file);
  for (const marker of [
    study.phi.patientName,
    study.phi.patientId,
    study.phi.accessionNumber,
    study.phi.otherPatientId,
    study.phi.referringPhysicianName,
    study.phi.patientAddress,
  ]) {
    expect(bytes.includes(Buffer.from(marker)), `${marker} leaked into ${path.basename(file)}`).toBe(false);
  }
}

async function finished(requestId: string, run: number): Promise<TransferRecord> {
  return waitFor(
    async () => {
      const t = await transfers.get(requestId);
      if (t?.error) console.error(`transfer ${requestId}: ${t.error}`);
      return t && t.runs >= run && t.status !== "queued" ? t : undefined;
    },
    "transfer to finish",
    90_000,
    100,
  );
}

async function arrivedStudy(study: GeneratedStudy, count: number) {
  await waitFor(async () => {
    const raw = new SitePaths(cfg.dataDir).rawStudyDir(study.studyInstanceUid);
    const n = study.seriesInstanceUids
      .map((s) => {
        try {
          return readdirSync(path.join(raw, s)).length;
        } catch {
          return 0;
        }
      })
      .reduce((a, b) => a + b, 0);
    return n === count || undefined;
  }, "ingest");
}

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa", "+uf"]);
  downPort = await freePort();
  cfg = testConfig({
    secret: "test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 300, attempts: 12, timeoutMs: 5000 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        events: ["baseline"],
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
      {
        name: "KEEP",
        privateTags: "keep",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
      { name: "DOWN", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: downPort } },
    ],
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
});

afterAll(async () => {
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  if (cfg) await cleanup(cfg);
});

const deps = () => ({ cfg, paths: new SitePaths(cfg.dataDir), flow, transfers });

describe("pseudonymize and forward", () => {
  it("sends every image of an assigned study, pseudonymized, private tags removed", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "xfer-1",
      series: 2,
      instancesPerSeries: 5,
      fileSize: 4096,
    });
    await receiveLocally(cfg, redis, study);
    await arrivedStudy(study, 10);
    const before = readdirSync(pacs.dir).length;
    const started = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0001",
      event: "baseline",
      requestedBy: "test",
    });
    expect(started.series).toBe(2);
    const t = await finished(started.requestId, started.run);
    expect(t).toMatchObject({ status: "done", filesSent: 10, filesFailed: 0, participant: "PROJ_0001" });
    const files = received(pacs.dir);
    expect(files.length - before).toBe(10);
    for (const f of files.slice(-10)) assertNoPhi(f, study);
    const dump = execFileSync("dcmdump", ["-q", files.at(-1)!], { encoding: "utf8" });
    expect(dump).toContain("[PROJ_0001]");
    expect(dump).toContain(`[${t.pseudoStudyInstanceUid}]`);
    expect(dump).not.toContain(study.studyInstanceUid);
    expect(dump).not.toContain(PRIVATE_CREATORS.main);
    expect(dump).toContain("[EventName:baseline]");
  });

  it("keeps private tags for a project that keeps them, and sends a repeated request once", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "xfer-keep",
      series: 1,
      instancesPerSeries: 3,
      fileSize: 4096,
    });
    await receiveLocally(cfg, redis, study);
    await arrivedStudy(study, 3);
    const req = {
      studyInstanceUid: study.studyInstanceUid,
      project: "KEEP",
      participant: "K1",
      requestedBy: "test",
    };
    const before = readdirSync(pacs.dir).length;
    const first = await startTransfer(deps(), req);
    await finished(first.requestId, first.run);
    const second = await startTransfer(deps(), req);
    expect(second.requestId).toBe(first.requestId);
    const t = await finished(second.requestId, second.run);
    expect(t).toMatchObject({ status: "done", runs: 2, filesSent: 3 });
    const files = received(pacs.dir);
    expect(files.length - before).toBe(3); // +uf: a second copy would be a new file
    const dump = execFileSync("dcmdump", ["-q", files.at(-1)!], { encoding: "utf8" });
    expect(dump).toContain(PRIVATE_CREATORS.main);
  });

  it("sends a late series to the same project automatically", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "xfer-late",
      series: 2,
      instancesPerSeries: 4,
      fileSize: 4096,
    });
    const firstSeries = (i: number) => i < 4;
    await receiveLocally(cfg, redis, study, firstSeries);
    await arrivedStudy(study, 4);
    const before = readdirSync(pacs.dir).length;
    const started = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0002",
      requestedBy: "test",
    });
    const t1 = await finished(started.requestId, started.run);
    expect(t1.filesSent).toBe(4);

    await receiveLocally(cfg, redis, study, (i) => !firstSeries(i));
    const t2 = await finished(started.requestId, started.run + 1);
    expect(t2).toMatchObject({ status: "done", filesSent: 8, requestedBy: "test" });
    expect(readdirSync(pacs.dir).length - before).toBe(8);
    const pseudoSeries = new Set(
      received(pacs.dir)
        .slice(-8)
        .map(
          (f) =>
            /\(0020,000e\) UI \[([0-9.]+)\]/.exec(
              execFileSync("dcmdump", ["-q", f], { encoding: "utf8" }),
            )?.[1],
        ),
    );
    expect(pseudoSeries.size).toBe(2);
  });

  it("retries while the destination is down and completes by itself when it is back", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "xfer-down",
      series: 1,
      instancesPerSeries: 3,
      fileSize: 4096,
    });
    await receiveLocally(cfg, redis, study);
    await arrivedStudy(study, 3);
    const started = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "DOWN",
      participant: "D1",
      requestedBy: "test",
    });
    await new Promise((r) => setTimeout(r, 30_000));
    expect((await transfers.get(started.requestId))?.status).toBe("queued");
    const late = await startStorescp(tmp("late-pacs"), ["+xa"], { port: downPort });
    try {
      const t = await finished(started.requestId, started.run);
      expect(t).toMatchObject({ status: "done", filesSent: 3 });
      expect(readdirSync(late.dir)).toHaveLength(3);
    } finally {
      await late.stop();
    }
  }, 120_000);
});
