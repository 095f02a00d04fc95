import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig, RedcapConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { redcapPushProcessor } from "../../src/processors/redcap-push.js";
import { QUEUES, createQueue, type RedcapPushJob } from "../../src/queues/index.js";
import { readRedcapAlert } from "../../src/redcap/alert.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { capturedLogger, startFionaSim, type FionaSim } from "../support/redcap-sim.js";

/** A study on disk as ingest leaves it: one series JSON (no images needed for the Incoming push). */
function fakeStudy(paths: SitePaths, i: number): string {
  const uid = `2.25.${1000 + i}`;
  const dir = paths.rawStudyDir(uid);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, `${uid}.1.json`),
    JSON.stringify({
      StudyInstanceUID: uid,
      SeriesInstanceUID: `${uid}.1`,
      PatientName: `P^${i}`,
      PatientID: `ID${i}`,
      NumFiles: "1",
    }),
  );
  return uid;
}

describe("REDCap rate limit and ban", () => {
  let fs: FionaSim;
  let cfg: FionaConfig & { redcap: RedcapConfig };
  let redis: Redis;
  const queues: Queue[] = [];
  const workers: Worker[] = [];

  beforeAll(async () => {
    fs = await startFionaSim({ banThreshold: 120 });
    cfg = testConfig({
      redcap: {
        url: fs.sim.url,
        rateLimitPerMinute: 100,
        retries: 0,
        projects: { incoming: { token: fs.tokens.incoming } },
      },
    }) as FionaConfig & { redcap: RedcapConfig };
    redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close(true)));
    await Promise.all(queues.map((q) => q.close()));
    redis?.disconnect();
    await fs?.sim.close();
    if (cfg) await cleanup(cfg);
  });

  function startPushWorker(c: typeof cfg, log = capturedLogger().log) {
    const push = createQueue(QUEUES.redcapPush, redis, c.redis.prefix);
    const sync = createQueue(QUEUES.redcapSync, redis, c.redis.prefix);
    queues.push(push, sync);
    const deps = {
      cfg: c,
      redis,
      log,
      redcapQueues: [push, sync],
      paths: new SitePaths(c.dataDir),
      transfers: new TransferRegistry(redis, c.redis.prefix),
    };
    // Several workers, as several processes would run them: the limit is shared through Redis.
    for (let i = 0; i < 3; i++)
      workers.push(
        new Worker(QUEUES.redcapPush, redcapPushProcessor(deps), {
          connection: redis,
          prefix: c.redis.prefix,
          concurrency: 8,
          limiter: { max: c.redcap.rateLimitPerMinute, duration: 60_000 },
        }),
      );
    return push;
  }

  it("500 pushes in a burst stay under the configured calls per minute: the simulator never bans", async () => {
    const paths = new SitePaths(cfg.dataDir);
    const push = startPushWorker(cfg);
    const uids = Array.from({ length: 500 }, (_, i) => fakeStudy(paths, i));
    await push.addBulk(
      uids.map((studyInstanceUid) => ({
        name: "incoming-study",
        data: { redcapProject: "incoming", kind: "incoming-study", studyInstanceUid } satisfies RedcapPushJob,
      })),
    );
    // The first minute's allowance goes out quickly, then every caller waits.
    await waitFor(() => fs.sim.hits.length >= 100 || undefined, "the first minute's calls", 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(fs.sim.hits.length).toBe(100);
    expect(fs.sim.maxPerMinute()).toBeLessThanOrEqual(100);
    expect(fs.sim.bannedIps.size).toBe(0);
    // Two calls per study (look up, import); concurrent jobs may have looked up and now wait to import.
    expect(fs.sim.project("incoming").records.size).toBeGreaterThan(0);
    expect(fs.sim.project("incoming").records.size).toBeLessThanOrEqual(50);
    expect(await readRedcapAlert(redis, cfg.redis.prefix)).toBeUndefined();
  });

  it("a ban (429) pauses every REDCap queue, raises the alert and parks the job instead of failing it", async () => {
    const small = await startFionaSim({ banThreshold: 1 });
    try {
      const c = testConfig({
        redcap: { url: small.sim.url, retries: 3, projects: { incoming: { token: small.tokens.incoming } } },
      }) as FionaConfig & { redcap: RedcapConfig };
      const { log, text } = capturedLogger();
      const push = startPushWorker(c, log);
      const paths = new SitePaths(c.dataDir);
      const job = await push.add("incoming-study", {
        redcapProject: "incoming",
        kind: "incoming-study",
        studyInstanceUid: fakeStudy(paths, 1),
      });
      const alert = await waitFor(() => readRedcapAlert(redis, c.redis.prefix), "alert", 20_000);
      expect(alert).toMatchObject({ status: 429, redcapProject: "incoming" });
      await waitFor(async () => (await push.isPaused()) || undefined, "paused push queue");
      expect(await queues.at(-1)!.isPaused()).toBe(true);
      await waitFor(async () => ((await job.getState()) === "delayed" ? true : undefined), "job parked");
      expect(small.sim.hits.length).toBe(2); // one allowed call, one banned: no retries
      expect(text()).toContain("redcap.banned");
      expect(text()).not.toContain(small.tokens.incoming);
      await cleanup(c);
    } finally {
      await small.sim.close();
    }
  });
});
