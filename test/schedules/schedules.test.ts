import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema, type FionaConfig } from "../../src/config/schema.js";
import { judgeLiveness, workerLiveness } from "../../src/queues/liveness.js";
import { createQueue, type QueueName } from "../../src/queues/index.js";
import { scheduleEntries, upsertSchedules } from "../../src/schedules/index.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";

let cfg: FionaConfig;
let redis: Redis;
const queues: Queue[] = [];
const queue = (name: QueueName) => {
  const q = createQueue(name, redis, cfg.redis.prefix) as Queue;
  queues.push(q);
  return q;
};

beforeAll(() => {
  cfg = testConfig();
  redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await Promise.all(queues.map((q) => q.close()));
  redis.disconnect();
  await cleanup(cfg);
});

describe("schedules", () => {
  it("defaults follow FIONA's crontab; inventory and REDCap only when configured", () => {
    const byId = Object.fromEntries(scheduleEntries(configSchema.parse({})).map((e) => [e.id, e.repeat]));
    expect(byId).toEqual({
      heartbeat: { every: 60_000 },
      "archive-cleanup": { pattern: "30 * * * *" },
      reconcile: { every: 60_000 },
      orphans: { every: 60_000 },
      "stale-links": { pattern: "2 3 * * *" },
      "incoming-retention": { pattern: "2 */4 * * *" },
      "clear-exports": { every: 3_600_000 },
      "redcap-pull-transfers": undefined,
      "redcap-pull-tables": undefined,
      "inventory-crawl": undefined,
      "inventory-reconcile": undefined,
    });
  });

  it("upserts every enabled scheduler (listed by getJobSchedulers) and removes one once disabled", async () => {
    const on: FionaConfig = { ...cfg, inventory: { ...cfg.inventory, enabled: true } };
    const r = await upsertSchedules(on, redis);
    expect(r.upserted.sort()).toEqual([
      "archive-cleanup",
      "clear-exports",
      "heartbeat",
      "incoming-retention",
      "inventory-crawl",
      "inventory-reconcile",
      "orphans",
      "reconcile",
      "stale-links",
    ]);
    const cleanupQ = queue("cleanup");
    const listed = await cleanupQ.getJobSchedulers();
    expect(listed.map((s) => [s.key, s.pattern ?? s.every]).sort()).toEqual([
      ["archive-cleanup", "30 * * * *"],
      ["incoming-retention", "2 */4 * * *"],
      ["orphans", 60_000],
      ["reconcile", 60_000],
      ["stale-links", "2 3 * * *"],
    ]);
    // Each is a job in Bull Board: delayed until its time, or waiting for its first run (every).
    expect((await cleanupQ.getJobs(["delayed", "wait"])).map((j) => j.data.kind).sort()).toEqual([
      "archive",
      "incoming-retention",
      "orphans",
      "reconcile",
      "stale-links",
    ]);
    const inv = queue("inventory");
    expect((await inv.getJobSchedulers()).map((s) => s.key).sort()).toEqual([
      "inventory-crawl",
      "inventory-reconcile",
    ]);

    const off = configSchema.parse({ ...cfg, schedules: { staleLinks: { enabled: false } } });
    const r2 = await upsertSchedules(off, redis);
    expect(r2.removed.sort()).toEqual(["inventory-crawl", "inventory-reconcile", "stale-links"]);
    expect((await cleanupQ.getJobSchedulers()).map((s) => s.key).sort()).toEqual([
      "archive-cleanup",
      "incoming-retention",
      "orphans",
      "reconcile",
    ]);
    expect(await inv.getJobSchedulers()).toEqual([]);

    // A scheduler of an earlier release (the incoming list's retention under its old name) goes away.
    await cleanupQ.upsertJobScheduler("quarantine-retention", { pattern: "2 */4 * * *" });
    expect((await upsertSchedules(off, redis)).removed).toContain("quarantine-retention");
    expect((await cleanupQ.getJobSchedulers()).map((s) => s.key)).not.toContain("quarantine-retention");
  });

  it("the heartbeat accepts every: 1000 and refuses less", () => {
    expect(configSchema.parse({ schedules: { heartbeat: { every: 1000 } } }).schedules.heartbeat.every).toBe(
      1000,
    );
    expect(() => configSchema.parse({ schedules: { heartbeat: { every: 999 } } })).toThrow();
  });
});

describe("worker liveness", () => {
  it("flags a queue with waiting jobs and no worker, and clears once a worker takes them", async () => {
    const q = queue("wsi");
    await q.add("wsi", { uploadId: "u1" });
    const [before] = await workerLiveness([q]);
    expect(before).toMatchObject({ queue: "wsi", workers: 0, waiting: 1, stalled: true });
    const w = new Worker("wsi", async () => "done", {
      connection: redis.duplicate(),
      prefix: cfg.redis.prefix,
    });
    try {
      await waitFor(async () => (await q.getCompletedCount()) === 1, "job taken");
      const [after] = await workerLiveness([q]);
      expect(after).toMatchObject({ workers: 1, waiting: 0, stalled: false });
    } finally {
      await w.close();
    }
  });

  it("judges a backlog older than the threshold as stalled even with workers", () => {
    expect(
      judgeLiveness({ queue: "x", workers: 2, waiting: 3, oldestWaitingSince: 0 }, 1000, 500),
    ).toMatchObject({
      oldestWaitingMs: 1000,
      stalled: true,
    });
    expect(
      judgeLiveness({ queue: "x", workers: 2, waiting: 3, oldestWaitingSince: 800 }, 1000, 500).stalled,
    ).toBe(false);
  });
});
