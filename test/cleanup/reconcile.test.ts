import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileJobId, runReconcile, type ReconcileResult } from "../../src/cleanup/reconcile.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { QuarantineStore } from "../../src/quarantine/store.js";
import { QUEUES, createQueue, type IngestJob, type TypedQueue } from "../../src/queues/index.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { receiveLocally } from "../support/pipeline.js";

/** Every log line the code under test writes, parsed. */
const lines: Array<Record<string, unknown>> = [];
const log = createLogger("info", "test", {
  write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>),
});
const reconcileEvents = () => lines.filter((l) => l.event === "reconcile");

let cfg: FionaConfig;
let paths: SitePaths;
let redis: Redis;
let ingest: TypedQueue<"ingest">;
let workers: WorkersHandle | undefined;
const src = mkdtempSync(path.join(tmpdir(), "fiona-reconcile-gen-"));
const gen = (seed: string, series: number, instancesPerSeries: number) =>
  generateStudy({ outDir: path.join(src, seed), seed, series, instancesPerSeries, fileSize: 4096 });
const studyA = gen("reconcile-a", 2, 3);
const studyB = gen("reconcile-b", 1, 1);
const studyC = gen("reconcile-c", 1, 3);
const studyD = gen("reconcile-d", 1, 1);

const quarantine = () => new QuarantineStore(redis, cfg.redis.prefix);
const pass = async (opts: { full?: boolean } = {}) =>
  (await runReconcile(
    { cfg, paths, redis, log, studies: new StudyRegistry(redis, cfg.redis.prefix), quarantine: quarantine() },
    opts,
  )) as ReconcileResult;

const linked = (s: GeneratedStudy, i: number) =>
  existsSync(
    path.join(
      paths.rawSeriesDir(
        s.studyInstanceUid,
        s.series.find((x) => x.files.includes(s.files[i]!))!.seriesInstanceUid,
      ),
      s.sopInstanceUids[i]!,
    ),
  );
const archivedPath = (s: GeneratedStudy, i: number) =>
  path.join(paths.archiveStudyDir(s.studyInstanceUid), `${s.modality}.${s.sopInstanceUids[i]}`);

async function pendingJobs() {
  return (await ingest.getJobs(["wait", "active", "delayed", "prioritized"])).filter((j) => !!j);
}

async function arrived(uid: string) {
  const q = createQueue(QUEUES.studyArrived, redis, cfg.redis.prefix);
  const jobs = await q.getJobs(["wait", "active", "completed"]);
  await q.close();
  return jobs.find((j) => j?.data.studyInstanceUid === uid)?.data;
}

const startIngest = () => startWorkers(cfg, log, [QUEUES.ingest, QUEUES.arrival, QUEUES.studyArrived]);

beforeAll(() => {
  cfg = testConfig({
    arrival: { quietSeconds: 1 },
    log: { level: "info" },
    schedules: { reconcile: { minAgeSeconds: 0 } },
  });
  paths = new SitePaths(cfg.dataDir);
  redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  ingest = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
});

afterAll(async () => {
  await workers?.close();
  await ingest.close();
  redis.disconnect();
  await cleanup(cfg);
  rmSync(src, { recursive: true, force: true });
});

describe("reconcile: archived files without a raw link and without an ingest job", () => {
  it("queues an ingest job for each file whose job was lost, none for one whose job is pending", async () => {
    await receiveLocally(cfg, redis, studyA);
    await ingest.drain(); // Redis lost the jobs
    const [jobB] = await receiveLocally(cfg, redis, studyB); // this one's job is still waiting
    // Received a while ago: later passes leave the folders alone unless told to look again.
    const past = new Date(Date.now() - 60_000);
    for (const s of [studyA, studyB]) utimesSync(paths.archiveStudyDir(s.studyInstanceUid), past, past);

    const first = await pass();
    expect(first).toMatchObject({ full: true, scanned: 2, files: 7, enqueued: 6, pending: 1, retried: 0 });
    const jobs = await pendingJobs();
    expect(jobs).toHaveLength(7);
    const byPath = new Map(jobs.map((j) => [j.data.path, j]));
    for (const i of studyA.files.keys()) {
      const job = byPath.get(archivedPath(studyA, i));
      expect(job?.id).toBe(reconcileJobId(archivedPath(studyA, i)));
      // The association recorded nowhere yet (no file of the study was ingested): the placeholder.
      expect(job?.data).toMatchObject({ calledAe: "RECONCILER", peer: "" });
    }
    expect(byPath.get(jobB!.path)?.id).not.toMatch(/^reconcile-/);

    // A second pass finds every file with a pending job and adds none.
    expect(await pass()).toMatchObject({ full: false, enqueued: 0, pending: 7 });
    expect(await pendingJobs()).toHaveLength(7);
  });

  it("at the start of an ingest worker, files the lost ones; the study arrives; then a pass adds nothing", async () => {
    await ingest.drain(); // lost again, reconciler's jobs included
    lines.length = 0;
    workers = await startIngest();
    await waitFor(async () => reconcileEvents().length > 0, "the start-up pass", 20_000);
    expect(reconcileEvents()[0]).toMatchObject({ enqueued: 7, pending: 0 });
    await waitFor(
      async () => studyA.files.every((_, i) => linked(studyA, i)) && linked(studyB, 0),
      "every file linked under raw/",
    );
    const a = await waitFor(() => arrived(studyA.studyInstanceUid), "study A to arrive", 20_000);
    expect(a).toMatchObject({ fileCount: 6, seriesCount: 2 });
    await waitFor(() => arrived(studyB.studyInstanceUid), "study B to arrive", 20_000);

    // The folders of the files it queued are read once more, then not at all until they change.
    expect(await pass()).toMatchObject({ scanned: 2, enqueued: 0, pending: 0, retried: 0 });
    expect(await pass()).toMatchObject({ scanned: 0, enqueued: 0, pending: 0, retried: 0 });
  });

  it("runs ingest jobs that failed for a transient cause again, not those that failed for good", async () => {
    await workers?.close();
    workers = undefined;
    // Study C arrives while ingest fails: a full disk, a reset connection, and a file ingest refuses.
    const dir = paths.archiveStudyDir(studyC.studyInstanceUid);
    mkdirSync(dir, { recursive: true });
    const reasons = [
      Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }),
      Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
      new UnrecoverableError("SeriesInstanceUID missing or not a valid UID"),
    ];
    for (const i of studyC.files.keys()) {
      copyFileSync(studyC.files[i]!, archivedPath(studyC, i));
      const data: IngestJob = {
        path: archivedPath(studyC, i),
        callingAe: "SCANNER1",
        calledAe: "FIONA",
        peer: "127.0.0.1",
        receivedAt: new Date().toISOString(),
      };
      await ingest.add(QUEUES.ingest, data, { attempts: 1 });
    }
    const failing = new Worker<IngestJob>(
      QUEUES.ingest,
      async (job) => {
        throw reasons[studyC.files.findIndex((_, i) => archivedPath(studyC, i) === job.data.path)]!;
      },
      { connection: redis.duplicate(), prefix: cfg.redis.prefix },
    );
    await waitFor(async () => (await ingest.getFailedCount()) === 3, "three failed ingest jobs");
    await failing.close();

    lines.length = 0;
    workers = await startIngest();
    await waitFor(async () => reconcileEvents().length > 0, "the start-up pass", 20_000);
    expect(reconcileEvents()[0]).toMatchObject({ retried: 2, enqueued: 0 });
    await waitFor(async () => linked(studyC, 0) && linked(studyC, 1), "the retried files linked");
    await waitFor(async () => (await pendingJobs()).length === 0, "ingest to drain");
    expect(linked(studyC, 2)).toBe(false);
    const failed = (await ingest.getFailed()).map((j) => j.failedReason);
    expect(failed).toEqual(["SeriesInstanceUID missing or not a valid UID"]);

    // Nothing left to retry, and the refused file is not queued again behind the failures list's back.
    expect(await pass()).toMatchObject({ enqueued: 0, retried: 0, pending: 0 });
    expect(await ingest.getFailedCount()).toBe(1);
  });

  it("keeps to failure records that outlive BullMQ's failed set: refused stays refused, transient is retried", async () => {
    // C's refused file: its failed job is gone from the failed set, its failure record stays.
    const [refused] = await ingest.getFailed();
    await refused!.remove();
    const store = quarantine();
    const job = (data: { path: string }) => ({ id: "gone", name: QUEUES.ingest, data });
    await store.add({ stage: "ingest", reason: refused!.failedReason, ids: {}, job: job(refused!.data) });
    // D's file failed for a full disk long ago; neither its job nor any other is left.
    mkdirSync(paths.archiveStudyDir(studyD.studyInstanceUid), { recursive: true });
    copyFileSync(studyD.files[0]!, archivedPath(studyD, 0));
    const full = await store.add({
      stage: "ingest",
      reason: "ENOSPC: no space left on device, write",
      ids: {},
      job: { ...job({ path: archivedPath(studyD, 0) }), id: "gone-too" },
    });

    expect(await pass({ full: true })).toMatchObject({ full: true, enqueued: 1, retried: 0 });
    await waitFor(async () => linked(studyD, 0), "D's file linked");
    expect(linked(studyC, 2)).toBe(false);
    expect((await store.list({ stage: "ingest" })).map((r) => r.reason)).toEqual([refused!.failedReason]);
    expect(await store.get(full.id)).toBeUndefined();
  });
});
