/**
 * A full disk on a real 40 MB tmpfs: images the receiver acknowledged meet ENOSPC in ingest; every
 * job goes back to delayed (no attempt used, nothing failed) and, once the filler is deleted, every
 * image is filed and the study arrives with no manual step. Also: a disk-full error wrapped as the
 * cause of an UnrecoverableError (EDQUOT) is delayed too, and de-identification threads keep the code.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema, type FionaConfig } from "../../src/config/schema.js";
import { sendFiles } from "../../src/dimse/index.js";
import { SitePaths } from "../../src/paths.js";
import { QuarantineStore } from "../../src/quarantine/store.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { startReceiver } from "../../src/receiver/index.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { retryWhenDiskFull } from "../../src/roles/disk-full-retry.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { DeidPool } from "../../src/transfer/deid-pool.js";
import { cleanup, REDIS_URL, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { fillUp, freeBytes, mountTmpfs } from "../support/tmpfs.js";
import { captureLogger } from "../receiver/helpers.js";

const tmpfs = mountTmpfs("ingest");
if (!tmpfs.mounted) console.warn(`disk-full tests skipped: cannot mount a tmpfs (${tmpfs.reason})`);

const SERIES = 2;
const PER_SERIES = 10;
const FILES = SERIES * PER_SERIES;

describe.skipIf(!tmpfs.mounted)("a full disk (40 MB tmpfs)", () => {
  const filler = path.join(tmpfs.dir, "filler");
  const study = generateStudy({
    outDir: fs.mkdtempSync(path.join(os.tmpdir(), "fiona-diskfull-gen-")),
    seed: "disk-full",
    modality: "MR",
    series: SERIES,
    instancesPerSeries: PER_SERIES,
    fileSize: 16 * 1024,
  });
  const { logger, lines } = captureLogger();
  let cfg: FionaConfig;
  let paths: SitePaths;
  let redis: Redis;
  let workers: WorkersHandle | undefined;
  const retries = () => lines.filter((l) => l.event === "disk-full-retry");

  beforeAll(() => {
    cfg = configSchema.parse({
      dataDir: tmpfs.dir,
      dicomHost: "127.0.0.1",
      redis: { url: REDIS_URL, prefix: `test-${randomBytes(4).toString("hex")}`, startLocal: false },
      // The floor is off: the receiver's writes must succeed, so that ingest is what meets the full disk.
      disk: { minFreeBytes: 0, minFreePercent: 0, fullRetryMs: 200, fullRetryMaxMs: 1000 },
      arrival: { quietSeconds: 1 },
      log: { level: "silent" },
    });
    paths = new SitePaths(cfg.dataDir);
    redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    await workers?.close();
    redis?.disconnect();
    tmpfs.unmount();
    if (cfg) await cleanup(cfg);
    fs.rmSync(study.dir, { recursive: true, force: true });
  });

  it("acknowledged images wait the full disk out as delayed jobs, then are filed and the study arrives", async () => {
    const rx = await startReceiver(cfg, { port: 0, log: logger });
    const dest = {
      host: "127.0.0.1",
      port: rx.port,
      calledAe: "FIONA",
      callingAe: "DISKFULL",
      timeoutMs: 10_000,
    };
    const report = await sendFiles(dest, study.files);
    await rx.close();
    expect(report.succeeded).toBe(FILES);

    fillUp(filler);
    expect(freeBytes(tmpfs.dir)).toBe(0);
    workers = await startWorkers(cfg, logger, [QUEUES.ingest, QUEUES.arrival, QUEUES.studyArrived]);
    const ingest = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    try {
      // Four rounds each, in which an ordinary retry would have used four of the job's five attempts.
      const jobs = await waitFor(
        async () => {
          const all: Job[] = await ingest.getJobs(["waiting", "active", "delayed", "failed", "completed"]);
          const each = all.length === FILES && all.every((j) => Number(j.data.diskFullDelays) >= 4);
          return each || all.some((j) => j.attemptsMade > 0) ? all : undefined;
        },
        "every ingest job delayed four times",
        30_000,
      );
      expect(jobs.map((j) => [j.attemptsMade, j.failedReason])).toEqual(jobs.map(() => [0, undefined]));
      const counts = await ingest.getJobCounts("failed", "completed");
      expect(counts).toEqual({ failed: 0, completed: 0 });
      expect(await new QuarantineStore(redis, cfg.redis.prefix).countByStage()).toEqual({});

      // The backoff doubles from disk.fullRetryMs up to disk.fullRetryMaxMs; every event names the cause.
      const delays = new Set(retries().map((l) => l.delayMs));
      expect([...delays].sort((a, b) => Number(a) - Number(b))).toEqual([200, 400, 800, 1000]);
      expect(retries().every((l) => l.queue === "ingest" && l.code === "ENOSPC")).toBe(true);
      expect((await new StudyRegistry(redis, cfg.redis.prefix).get(study.studyInstanceUid))?.status).not.toBe(
        "arrived",
      );

      // Space comes back: nothing else is done by hand.
      fs.rmSync(filler);
      await waitFor(
        async () => (await ingest.getJobCounts("completed")).completed === FILES || undefined,
        "every ingest job completed",
        20_000,
      );
      expect((await ingest.getJobCounts("failed")).failed).toBe(0);
    } finally {
      await ingest.close();
    }

    for (let s = 0; s < SERIES; s++) {
      const series = study.series[s]!;
      const dir = paths.rawSeriesDir(study.studyInstanceUid, series.seriesInstanceUid);
      const links = fs.readdirSync(dir).sort();
      expect(links).toEqual([...series.sopInstanceUids].sort());
      for (const l of links) expect(fs.lstatSync(path.join(dir, l)).isSymbolicLink()).toBe(true);
      const summary = JSON.parse(
        fs.readFileSync(paths.seriesJson(study.studyInstanceUid, series.seriesInstanceUid), "utf8"),
      ) as { NumFiles: string };
      expect(summary.NumFiles).toBe(String(PER_SERIES));
    }
    const registry = new StudyRegistry(redis, cfg.redis.prefix);
    const entry = await waitFor(
      async () => {
        const e = await registry.get(study.studyInstanceUid);
        return e?.status === "arrived" ? e : undefined;
      },
      "the study to arrive",
      20_000,
    );
    expect(entry.status).toBe("arrived");
    const arrived = createQueue(QUEUES.studyArrived, redis, cfg.redis.prefix);
    const arrivals = (await arrived.getJobs(["waiting", "active", "completed", "delayed"])).map(
      (j) => j.data,
    );
    await arrived.close();
    expect(arrivals).toContainEqual(expect.objectContaining({ arrival: 1, fileCount: FILES }));

    // The retry events name no paths: participants/<PatientID>/ would be one of them.
    expect(JSON.stringify(lines)).not.toMatch(/PHIMARK/);
  });

  it("de-identification threads keep the errno code of a full disk", async () => {
    fillUp(filler);
    const pool = new DeidPool(logger, 1);
    try {
      const err = await pool
        .run({
          files: study.files,
          outDir: path.join(paths.outbox, "disk-full", "series"),
          ctx: { project: { name: "DISKFULL" }, participant: "P1", secret: "0123456789abcdef0123" },
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ENOSPC" });
    } finally {
      await pool.close();
      fs.rmSync(filler);
    }
  });

  it("a disk-full cause inside an UnrecoverableError (EDQUOT) is delayed, not failed", async () => {
    const name = `${cfg.redis.prefix}-wrapped`;
    const queue = new Queue(name, { connection: redis, prefix: cfg.redis.prefix });
    let calls = 0;
    const handler = retryWhenDiskFull(
      async () => {
        if (++calls <= 2) {
          const quota = Object.assign(new Error("quota exceeded"), { code: "EDQUOT", syscall: "write" });
          throw Object.assign(new UnrecoverableError("cannot write the series JSON"), { cause: quota });
        }
        return "done";
      },
      name,
      logger,
      { fullRetryMs: 50, fullRetryMaxMs: 1000 },
    );
    const worker = new Worker(name, handler, { connection: redis, prefix: cfg.redis.prefix });
    try {
      // One attempt only: had a delay used it, the job would have failed for good.
      const job = await queue.add("x", { some: "data" }, { attempts: 1 });
      const done = await waitFor(
        async () =>
          (await job.isCompleted()) || (await job.isFailed()) ? await queue.getJob(job.id!) : undefined,
        "the wrapped job to finish",
        10_000,
      );
      expect(done?.failedReason).toBeUndefined();
      expect(done?.returnvalue).toBe("done");
      expect(done?.data).toEqual({ some: "data", diskFullDelays: 2 });
      const events = retries().filter((l) => l.queue === name);
      expect(events.map((l) => [l.code, l.syscall, l.delayMs])).toEqual([
        ["EDQUOT", "write", 50],
        ["EDQUOT", "write", 100],
      ]);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
