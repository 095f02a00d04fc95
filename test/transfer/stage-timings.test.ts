import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { stageTimings, type StageTimings } from "../../src/transfer/stage-timings.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { parsePrometheus, sampleValue } from "../metrics/prom-parser.js";
import { fionaCli } from "../support/cli.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";
import { testAdminUser } from "../web/helpers.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-stages-${tag}-`));
const METRICS_TOKEN = "stage-timings-scrape-token-0123456789";
const SERIES = 3;
const PER_SERIES = 4;

let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let web: WebHandle;
let flow: FlowProducer;
let transfers: TransferRegistry;
let pacs: Storescp;
let record: TransferRecord;

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  cfg = testConfig({
    secret: "test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    web: { metricsToken: METRICS_TOKEN, users: [testAdminUser] },
    projects: [{ name: "PROJ", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port } }],
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  web = await startWeb({ config: cfg, port: 0, host: "127.0.0.1", logger: log });
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);

  const study = generateStudy({
    outDir: tmp("gen"),
    seed: "stage-timings",
    series: SERIES,
    instancesPerSeries: PER_SERIES,
    fileSize: 8192,
  });
  await receiveLocally(cfg, redis, study);
  const raw = new SitePaths(cfg.dataDir).rawStudyDir(study.studyInstanceUid);
  const filesIn = (series: string) => {
    try {
      return readdirSync(path.join(raw, series)).length;
    } catch {
      return 0; // not ingested yet
    }
  };
  await waitFor(
    () =>
      study.seriesInstanceUids.map(filesIn).reduce((a, b) => a + b, 0) === SERIES * PER_SERIES || undefined,
    "ingest",
  );
  const started = await startTransfer(
    { cfg, paths: new SitePaths(cfg.dataDir), flow, transfers },
    { studyInstanceUid: study.studyInstanceUid, project: "PROJ", participant: "P1", requestedBy: "test" },
  );
  record = await waitFor(async () => {
    const t = await transfers.get(started.requestId);
    return t && t.status !== "queued" ? t : undefined;
  }, "transfer to finish");
}, 90_000);

afterAll(async () => {
  await web?.close();
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  if (cfg) await cleanup(cfg);
});

/** Each timing a non-negative whole number of ms, the stages within the run's duration. */
function expectPlausible(s: StageTimings, durationMs: number) {
  const numbers = [s.queueWaitMs, s.bookkeepingMs, ...Object.values(s.deidentify), ...Object.values(s.send)];
  for (const n of numbers) {
    expect(Number.isInteger(n)).toBe(true);
    expect(n).toBeGreaterThanOrEqual(0);
  }
  const slack = 50; // job timestamps and the run's clock are read a few ms apart
  expect(s.deidentify.jobs).toBe(SERIES);
  expect(s.send.jobs).toBe(SERIES);
  for (const j of [s.deidentify, s.send]) {
    expect(j.maxMs).toBeLessThanOrEqual(j.spanMs);
    expect(j.maxMs).toBeLessThanOrEqual(j.sumMs);
  }
  // Every series is de-identified before it is sent, all between the queue wait and the bookkeeping.
  expect(s.queueWaitMs + Math.max(s.deidentify.spanMs, s.send.spanMs) + s.bookkeepingMs).toBeLessThanOrEqual(
    durationMs + slack,
  );
  expect(s.queueWaitMs + s.deidentify.maxMs + s.bookkeepingMs).toBeLessThanOrEqual(durationMs + slack);
}

describe("stage timings of a transfer run", () => {
  it("are kept on the transfer record of a run sent to storescp", () => {
    expect(record).toMatchObject({ status: "done", filesSent: SERIES * PER_SERIES });
    expect(readdirSync(pacs.dir).length).toBe(SERIES * PER_SERIES);
    expect(record.durationMs).toBeGreaterThan(0);
    expect(record.stages).toBeDefined();
    expectPlausible(record.stages!, record.durationMs!);
  });

  it("appear in fiona transfers --json and the text listing", async () => {
    const cli = fionaCli(cfg);
    const list = JSON.parse(await cli("transfers", "--json")) as TransferRecord[];
    expect(list.find((t) => t.requestId === record.requestId)?.stages).toEqual(record.stages);
    expect(await cli("transfers")).toMatch(
      /queue wait \d+\.\d\d s, de-identification .*, send .*, bookkeeping/,
    );
  });

  it("feed the fiona_transfer_stage_seconds histogram in /metrics", async () => {
    const res = await fetch(`${web.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    const fams = parsePrometheus(await res.text());
    expect(fams.get("fiona_transfer_stage_seconds")?.type).toBe("histogram");
    const s = record.stages!;
    const observed = { queue_wait: s.queueWaitMs, deidentify: s.deidentify.spanMs, send: s.send.spanMs };
    for (const [stage, ms] of Object.entries({ ...observed, bookkeeping: s.bookkeepingMs })) {
      expect(sampleValue(fams, "fiona_transfer_stage_seconds_count", { stage })).toBe(1);
      expect(sampleValue(fams, "fiona_transfer_stage_seconds_sum", { stage })).toBeCloseTo(ms / 1000, 3);
      expect(sampleValue(fams, "fiona_transfer_stage_seconds_bucket", { stage, le: "+Inf" })).toBe(1);
    }
  });
});

describe("stageTimings", () => {
  it("splits a run into queue wait, de-identification, send and bookkeeping", () => {
    const t = stageTimings(
      1000,
      2000,
      [
        { start: 1100, end: 1300 },
        { start: 1150, end: 1500 },
      ],
      [
        { start: 1300, end: 1600 },
        { start: 1500, end: 1900 },
      ],
    );
    expect(t).toEqual({
      queueWaitMs: 100,
      deidentify: { jobs: 2, sumMs: 550, maxMs: 350, spanMs: 400 },
      send: { jobs: 2, sumMs: 700, maxMs: 400, spanMs: 600 },
      bookkeepingMs: 100,
    });
  });

  it("never gives negative times when clocks disagree, and copes with a run without jobs", () => {
    const t = stageTimings(1000, 1000, [{ start: 900, end: 950 }], [{ start: 950, end: 1010 }]);
    expect(t.queueWaitMs).toBe(0);
    expect(t.bookkeepingMs).toBe(0);
    expect(stageTimings(1000, 1500, [], [])).toMatchObject({ queueWaitMs: 500, bookkeepingMs: 0 });
  });
});
