import { UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { addIngestJob, hasPendingIngest, markIngested, notePendingIngest } from "../../src/ingest/pending.js";
import { readReception, receptionKeys } from "../../src/ingest/reception.js";
import { QUEUES, createQueue, type IngestJob, type TypedQueue } from "../../src/queues/index.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";

let cfg: FionaConfig;
let redis: Redis;
let queue: TypedQueue<"ingest">;

const job = (name: string): IngestJob => ({
  path: `/archive/${name}`,
  callingAe: "SCANNER",
  calledAe: "FIONA",
  peer: "127.0.0.1",
  receivedAt: new Date().toISOString(),
});
const pending = (study: string) => hasPendingIngest(redis, cfg.redis.prefix, queue, study);
const noted = (study: string) => redis.zcard(receptionKeys(cfg.redis.prefix, study).pending);

/** A worker that runs each job as `behave(job path)` says: complete, fail for good, or hold until released. */
function worker(behave: (path: string) => "ok" | "fail" | Promise<void>) {
  const connection = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  const w = new Worker<IngestJob>(
    QUEUES.ingest,
    async (j) => {
      const b = behave(j.data.path);
      if (b === "fail") throw new UnrecoverableError("refused");
      if (b !== "ok") await b;
    },
    { connection, prefix: cfg.redis.prefix },
  );
  return {
    async close() {
      await w.close();
      connection.disconnect();
    },
  };
}

beforeAll(() => {
  cfg = testConfig();
  redis = new Redis(cfg.redis.url);
  queue = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
});

afterAll(async () => {
  await queue.close();
  redis.disconnect();
  await cleanup(cfg);
});

describe("pending ingest per study", () => {
  it("is pending while a job waits, and not once every job completed or failed for good", async () => {
    const ids = await Promise.all(
      ["a", "b", "fail"].map((n) => addIngestJob(redis, cfg.redis.prefix, queue, "1.2.3", job(n))),
    );
    expect(await pending("1.2.3")).toBe(true);
    expect(await noted("1.2.3")).toBe(3);
    expect(await pending("9.9.9")).toBe(false);

    const w = worker((p) => (p.endsWith("fail") ? "fail" : "ok"));
    try {
      await waitFor(async () => !(await pending("1.2.3")), "jobs to finish");
    } finally {
      await w.close();
    }
    expect((await queue.getJob(ids[2]!))?.failedReason).toBe("refused");
    expect(await noted("1.2.3")).toBe(0);
    expect((await readReception(redis, cfg.redis.prefix, "1.2.3")).lastReceivedMs).toBeGreaterThan(0);
  });

  it("keeps a job marked ingested pending until BullMQ has finished it (a worker may die in between)", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const id = await addIngestJob(redis, cfg.redis.prefix, queue, "1.2.4", job("held"));
    const w = worker(() => held);
    try {
      await waitFor(async () => (await queue.getJob(id))?.processedOn, "job to start");
      await markIngested(redis, cfg.redis.prefix, "1.2.4", [id]);
      expect(await pending("1.2.4")).toBe(true);
      release();
      await waitFor(async () => (await queue.getJob(id))?.finishedOn, "job to complete");
    } finally {
      await w.close();
    }
    // Marked ingested and then removed from the queue (removeOnComplete): finished at once.
    await (await queue.getJob(id))!.remove();
    expect(await pending("1.2.4")).toBe(false);
  });

  it("treats a noted job missing from the queue as on its way for a grace period, then as gone", async () => {
    const now = Date.now();
    // Received an hour ago (a file the reconciler found): the grace runs from the note.
    await notePendingIngest(redis, cfg.redis.prefix, "1.2.5", "in-flight", now - 3_600_000, now);
    expect(await hasPendingIngest(redis, cfg.redis.prefix, queue, "1.2.5", now + 1_000)).toBe(true);
    expect(await hasPendingIngest(redis, cfg.redis.prefix, queue, "1.2.5", now + 11_000)).toBe(false);
    expect(await noted("1.2.5")).toBe(0);
  });

  it("moves the last reception forward only", async () => {
    await notePendingIngest(redis, cfg.redis.prefix, "1.2.6", "x", 2_000);
    await notePendingIngest(redis, cfg.redis.prefix, "1.2.6", "y", 1_000);
    expect((await readReception(redis, cfg.redis.prefix, "1.2.6")).lastReceivedMs).toBe(2_000);
    const ttl = await redis.pttl(receptionKeys(cfg.redis.prefix, "1.2.6").pending);
    expect(ttl).toBeGreaterThan(0);
  });
});
