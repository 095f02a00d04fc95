import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import type { QuarantineRecord } from "../../src/quarantine/record.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { AuditLog } from "../../src/registry/audit.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { liveStatus } from "../../src/transfer/live-status.js";
import { startTransfer } from "../../src/transfer/start.js";
import { fionaCli } from "../support/cli.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-quar-${tag}-`));
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let flow: FlowProducer;
let transfers: TransferRegistry;
let pacs: Storescp;
let refusing: Storescp;
let fiona: (...args: string[]) => Promise<string>;

const failures = async (stage: string) =>
  JSON.parse(await fiona("failures", "--stage", stage, "--json")) as QuarantineRecord[];

const quarantined = (stage: string, match: (r: QuarantineRecord) => boolean) =>
  waitFor(async () => (await failures(stage)).find(match), `a ${stage} quarantine record`, 30_000, 200);

async function finished(requestId: string, run: number): Promise<TransferRecord> {
  return waitFor(
    async () => {
      const t = await transfers.get(requestId);
      return t && t.runs >= run && t.status !== "queued" ? t : undefined;
    },
    "transfer to finish",
    60_000,
    100,
  );
}

async function receivedStudy(seed: string, files: number) {
  const study = generateStudy({
    outDir: tmp("gen"),
    seed,
    series: 1,
    instancesPerSeries: files,
    fileSize: 4096,
  });
  await receiveLocally(cfg, redis, study);
  const dir = new SitePaths(cfg.dataDir).rawSeriesDir(study.studyInstanceUid, study.seriesInstanceUids[0]!);
  await waitFor(async () => {
    try {
      return readdirSync(dir).length === files || undefined;
    } catch {
      return undefined;
    }
  }, "ingest");
  return { study, dir };
}

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  refusing = await startStorescp(tmp("refusing"), ["--refuse"]);
  cfg = testConfig({
    secret: "quarantine-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 200, attempts: 3, timeoutMs: 5000 },
    projects: [
      { name: "PROJ", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port } },
      { name: "REFUSED", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: refusing.port } },
    ],
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
  fiona = fionaCli(cfg);
});

afterAll(async () => {
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  await refusing?.stop();
  if (cfg) await cleanup(cfg);
});

const deps = () => ({ cfg, paths: new SitePaths(cfg.dataDir), flow, transfers });

describe("a stage's quarantine", () => {
  it("keeps an ingest that cannot parse, lists it, and ingests it once the file is readable", async () => {
    const paths = new SitePaths(cfg.dataDir);
    mkdirSync(path.join(paths.archive, "bad"), { recursive: true });
    const file = path.join(paths.archive, "bad", "broken.dcm");
    writeFileSync(file, Buffer.alloc(300, 0x41));
    const queue = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    const job = await queue.add(QUEUES.ingest, {
      path: file,
      callingAe: "SCANNER1",
      calledAe: "FIONA",
      peer: "127.0.0.1",
      receivedAt: new Date().toISOString(),
    });
    const record = await quarantined("ingest", (r) => r.job?.id === job.id);
    expect(record).toMatchObject({ stage: "ingest", ids: { file: "broken.dcm" }, count: 1 });
    expect(record.reason).toMatch(/unreadable DICOM/);
    expect(await fiona("failures")).toContain(record.id);

    // The operator puts a readable file in its place and retries from the record.
    const good = generateStudy({
      outDir: tmp("good"),
      seed: "quarantine-ingest",
      instancesPerSeries: 1,
      fileSize: 2048,
    });
    copyFileSync(good.files[0]!, file);
    expect(await fiona("failures", "retry", record.id)).toMatch(/queued again/);
    await waitFor(
      async () => (await queue.getJobState(job.id!)) === "completed" || undefined,
      "the retried ingest job",
    );
    const raw = paths.rawSeriesDir(good.studyInstanceUid, good.seriesInstanceUids[0]!);
    expect(readlinkSync(path.join(raw, good.sopInstanceUids[0]!))).toBe(file);
    expect(await failures("ingest")).toEqual([]);
    await queue.close();
  }, 60_000);

  it("keeps the series de-identification refused, and a retry re-runs the transfer request", async () => {
    const { study, dir } = await receivedStudy("quarantine-deid", 3);
    // One archived file becomes unreadable after it was ingested.
    const broken = readlinkSync(path.join(dir, study.sopInstanceUids[1]!));
    const original = readFileSync(broken);
    writeFileSync(broken, original.subarray(0, 200));
    const started = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "P1",
      requestedBy: "test",
    });
    expect(await finished(started.requestId, 1)).toMatchObject({ status: "partial", filesSent: 2 });
    const record = await quarantined("deidentify", (r) => r.ids.requestId === started.requestId);
    expect(record).toMatchObject({
      files: 1,
      ids: {
        studyInstanceUid: study.studyInstanceUid,
        seriesInstanceUid: study.seriesInstanceUids[0],
        project: "PROJ",
        participant: "P1",
      },
    });

    writeFileSync(broken, original);
    expect(await fiona("failures", "retry", record.id)).toContain(
      `transfer ${started.requestId} run 2 queued`,
    );
    expect(await finished(started.requestId, 2)).toMatchObject({ status: "done", filesSent: 3 });
    expect(await failures("deidentify")).toEqual([]);
    const audit = await new AuditLog(redis, cfg.redis.prefix).list({ limit: 10 });
    expect(audit).toContainEqual(
      expect.objectContaining({ action: "quarantine-retry", via: "cli", requestId: started.requestId }),
    );
  }, 90_000);

  it("keeps the series a destination rejected, and dismissing drops the record only", async () => {
    const { study } = await receivedStudy("quarantine-send", 2);
    const started = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "REFUSED",
      participant: "P2",
      requestedBy: "test",
    });
    expect(await finished(started.requestId, 1)).toMatchObject({ status: "failed" });
    const record = await quarantined("send", (r) => r.ids.requestId === started.requestId);
    expect(record.reason).toMatch(/reject/i);
    expect(record.ids).toMatchObject({ seriesInstanceUid: study.seriesInstanceUids[0] });
    expect(record.job?.data).toMatchObject({ requestId: started.requestId });

    // `fiona transfers` says what the page says.
    const live = await liveStatus(flow, (await transfers.get(started.requestId))!);
    expect(live.state).toBe("failed");
    expect(await fiona("transfers")).toContain(`${started.requestId} ${live.label} REFUSED/P2`);

    expect(await fiona("failures", "dismiss", record.id)).toContain("dismissed");
    expect((await failures("send")).some((r) => r.id === record.id)).toBe(false);
    expect((await transfers.get(started.requestId))?.status).toBe("failed");
    await expect(fiona("failures", "retry", record.id)).rejects.toThrow(/no quarantine record/);
  }, 90_000);

  it("refuses an unknown stage", async () => {
    await expect(fiona("failures", "--stage", "nope")).rejects.toThrow(/unknown stage nope/);
  });
});
