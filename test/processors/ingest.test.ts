import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { receiveLocally } from "../support/pipeline.js";

const log = createLogger("silent");
let cfg: FionaConfig;
let paths: SitePaths;
let redis: Redis;
let workers: WorkersHandle[] = [];

const receive = (study: GeneratedStudy, only?: (i: number) => boolean) =>
  receiveLocally(cfg, redis, study, only);

const readSeries = (study: string, series: string) =>
  JSON.parse(readFileSync(paths.seriesJson(study, series), "utf8")) as Record<string, unknown>;

async function drained() {
  const q = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
  const c = await q.getJobCounts("waiting", "active", "delayed", "failed");
  await q.close();
  return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0 ? c : undefined;
}

async function arrivedJobs() {
  const q = createQueue(QUEUES.studyArrived, redis, cfg.redis.prefix);
  const jobs = await q.getJobs(["waiting", "active", "completed", "failed", "delayed"]);
  await q.close();
  return jobs.map((j) => j.data).sort((a, b) => a.arrival - b.arrival);
}

beforeAll(async () => {
  cfg = testConfig({ arrival: { quietSeconds: 1 }, ingest: { concurrency: 8 } });
  paths = new SitePaths(cfg.dataDir);
  redis = new Redis(cfg.redis.url);
  // Two worker sets with their own connections, as two processes would have.
  workers = [await startWorkers(cfg, log), await startWorkers(cfg, log)];
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  redis.disconnect();
  await cleanup(cfg);
});

describe("ingest", () => {
  const src = mkdtempSync(path.join(tmpdir(), "fiona-gen-"));
  const study = generateStudy({
    outDir: src,
    seed: "ingest-1",
    modality: "MR",
    series: [
      { description: "t1_mprage_sag", orientation: "sagittal" },
      { description: "t2_tse_tra", orientation: "axial" },
    ],
    instancesPerSeries: 6,
    fileSize: 8192,
  });

  it("files every image under raw/, writes the series JSON and the participant link", async () => {
    await receive(study);
    const counts = await waitFor(drained, "ingest queue to drain");
    expect(counts.failed).toBe(0);

    for (const s of study.series) {
      const dir = paths.rawSeriesDir(study.studyInstanceUid, s.seriesInstanceUid);
      expect(readdirSync(dir).sort()).toEqual([...s.sopInstanceUids].sort());
      const link = readlinkSync(path.join(dir, s.sopInstanceUids[0]!));
      expect(link).toBe(
        path.join(paths.archiveStudyDir(study.studyInstanceUid), `MR.${s.sopInstanceUids[0]}`),
      );

      const j = readSeries(study.studyInstanceUid, s.seriesInstanceUid);
      expect(j).toMatchObject({
        StudyInstanceUID: study.studyInstanceUid,
        SeriesInstanceUID: s.seriesInstanceUid,
        SeriesDescription: s.description,
        NumFiles: "6",
        IncomingConnection: { AETitleCaller: "SCANNER1", AETitleCalled: "FIONA", CallerIP: "127.0.0.1" },
      });
      expect(j.ClassifyType).toEqual(expect.arrayContaining(["MR"]));
    }
    const sag = readSeries(study.studyInstanceUid, study.seriesInstanceUids[0]!);
    const tra = readSeries(study.studyInstanceUid, study.seriesInstanceUids[1]!);
    expect(sag.ClassifyType).toContain("sagittal");
    expect(tra.ClassifyType).toContain("axial");
    expect(tra.ClassifyType).not.toContain("sagittal");

    const participantDir = path.join(paths.participants, study.phi.patientId);
    const [when] = readdirSync(participantDir);
    expect(readlinkSync(path.join(participantDir, when!))).toBe(paths.rawStudyDir(study.studyInstanceUid));
  });

  it("keeps NumFiles exact when the same images are sent again, in parallel, to two workers", async () => {
    // The same images three more times at once (re-sends), spread over both worker sets.
    await Promise.all([receive(study), receive(study), receive(study)]);
    await waitFor(drained, "ingest queue to drain");
    for (const s of study.series) {
      expect(readSeries(study.studyInstanceUid, s.seriesInstanceUid).NumFiles).toBe("6");
    }
  });

  it("counts distinct images under heavy concurrency on one series", async () => {
    const big = generateStudy({
      outDir: mkdtempSync(path.join(tmpdir(), "fiona-gen-")),
      seed: "ingest-big",
      series: 1,
      instancesPerSeries: 120,
      fileSize: 4096,
    });
    // Every image twice, interleaved, across two worker sets of concurrency 8.
    await Promise.all([receive(big), receive(big)]);
    await waitFor(drained, "ingest queue to drain");
    expect(readSeries(big.studyInstanceUid, big.seriesInstanceUids[0]!).NumFiles).toBe("120");
  });

  it("announces a study once per quiet period, and again after late images", async () => {
    const late = generateStudy({
      outDir: mkdtempSync(path.join(tmpdir(), "fiona-gen-")),
      seed: "ingest-arrival",
      series: 2,
      instancesPerSeries: 3,
      fileSize: 4096,
    });
    // Images trickle in for longer than the quiet time in total, but never with a 1 s gap.
    for (let i = 0; i < 3; i++) {
      await receive(late, (j) => j === i);
      await new Promise((r) => setTimeout(r, 400));
    }
    const registry = new StudyRegistry(redis, cfg.redis.prefix);
    const first = await waitFor(async () => {
      const a = (await arrivedJobs()).filter((d) => d.studyInstanceUid === late.studyInstanceUid);
      return a.length ? a : undefined;
    }, "first arrival");
    await new Promise((r) => setTimeout(r, 1500));
    const afterQuiet = (await arrivedJobs()).filter((d) => d.studyInstanceUid === late.studyInstanceUid);
    expect(afterQuiet).toHaveLength(1);
    expect(first[0]).toMatchObject({ arrival: 1, seriesCount: 1, fileCount: 3 });
    expect((await registry.get(late.studyInstanceUid))?.status).toBe("arrived");

    await receive(late, (j) => j >= 3);
    const second = await waitFor(async () => {
      const a = (await arrivedJobs()).filter((d) => d.studyInstanceUid === late.studyInstanceUid);
      return a.length === 2 ? a : undefined;
    }, "second arrival");
    expect(second[1]).toMatchObject({ arrival: 2, seriesCount: 2, fileCount: 6 });
    const entry = await registry.get(late.studyInstanceUid);
    expect(entry).toMatchObject({ status: "arrived", arrivals: 2, callingAe: "SCANNER1", calledAe: "FIONA" });
    expect(entry?.series.map((s) => s.numFiles)).toEqual([3, 3]);
    // The registry never holds patient identity.
    const raw = JSON.stringify(
      await redis.hgetall(`${cfg.redis.prefix}:registry:study:${late.studyInstanceUid}`),
    );
    expect(raw).not.toContain(late.phi.patientName);
    expect(raw).not.toContain(late.phi.patientId);
  });

  it("fails a job for a file outside the archive without retrying", async () => {
    const q = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    const job = await q.add(QUEUES.ingest, {
      path: "/etc/passwd",
      callingAe: "X",
      calledAe: "FIONA",
      peer: "127.0.0.1",
      receivedAt: new Date().toISOString(),
    });
    await waitFor(async () => ((await q.getJob(job.id!))?.failedReason ? true : undefined), "job to fail");
    const failed = await q.getJob(job.id!);
    expect(failed?.failedReason).toMatch(/outside the archive/);
    expect(failed?.attemptsMade).toBe(1);
    await q.close();
    expect(existsSync(path.join(paths.raw, "etc"))).toBe(false);
  });

  it("waits for a file whose job came first (the receiver enqueues while it writes), skips one that never comes", async () => {
    const early = generateStudy({
      outDir: src,
      seed: "ingest-early",
      modality: "MR",
      series: 1,
      instancesPerSeries: 1,
      fileSize: 4096,
    });
    const dir = paths.archiveStudyDir(early.studyInstanceUid);
    const dest = path.join(dir, `MR.${early.sopInstanceUids[0]}`);
    const never = path.join(dir, "MR.1.2.3.4.5.6.7.8.9");
    const q = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    const job = (p: string) => ({
      path: p,
      callingAe: "X",
      calledAe: "FIONA",
      peer: "127.0.0.1",
      receivedAt: new Date().toISOString(),
    });
    const [first, gone] = await Promise.all([
      q.add(QUEUES.ingest, job(dest)),
      q.add(QUEUES.ingest, job(never)),
    ]);
    await new Promise((r) => setTimeout(r, 60));
    mkdirSync(dir, { recursive: true });
    copyFileSync(early.files[0]!, dest);
    const done = async (id: string) => ((await q.getJob(id))?.finishedOn ? await q.getJob(id) : undefined);
    const a = await waitFor(() => done(first.id!), "early job");
    expect(a?.returnvalue).toMatchObject({ studyInstanceUid: early.studyInstanceUid, numFiles: 1 });
    const b = await waitFor(() => done(gone.id!), "job without a file", 10_000);
    expect(b?.returnvalue).toEqual({ skipped: "file gone" });
    expect(b?.attemptsMade).toBe(1);
    await q.close();
  });
});
