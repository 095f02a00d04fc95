import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { emitAutomation } from "../../src/automation/emit.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { QUEUES, createQueue, type TypedQueue } from "../../src/queues/index.js";
import { cleanup, testConfig } from "../support/env.js";

const hook = { type: "webhook", url: "http://127.0.0.1:9/h" } as const;
let cfg: FionaConfig;
let redis: Redis;
let queue: TypedQueue<"automation">;

beforeAll(() => {
  cfg = testConfig({
    automation: {
      subscriptions: [
        { name: "per-project", trigger: { type: "study-arrived", project: "A" }, action: hook },
        { name: "by-ae", trigger: { type: "study-arrived", calledAe: "FIONA" }, action: hook },
      ],
    },
  });
  redis = new Redis(cfg.redis.url);
  queue = createQueue(QUEUES.automation, redis, cfg.redis.prefix);
});

afterAll(async () => {
  await queue.close();
  redis.disconnect();
  await cleanup(cfg);
});

describe("emitAutomation", () => {
  it("fires a called-AE subscription once per arrival however many projects the study routes to", async () => {
    const arrival = {
      type: "study-arrived",
      studyInstanceUid: "1.2.3",
      calledAe: "FIONA",
      callingAe: "CT1",
    } as const;
    for (const project of ["A", "B"]) await emitAutomation(cfg, queue, { ...arrival, project }, "1");
    const jobs = await queue.getJobs(["waiting"]);
    const by = (name: string) => jobs.filter((j) => j.data.subscription === name);
    expect(by("per-project").map((j) => j.data.subject.project)).toEqual(["A"]);
    expect(by("by-ae")).toHaveLength(1);
    expect(by("by-ae")[0]!.data.subject).toEqual({
      studyInstanceUid: "1.2.3",
      calledAe: "FIONA",
      callingAe: "CT1",
    });
    // The next arrival of the same study fires again.
    await emitAutomation(cfg, queue, { ...arrival, project: "A" }, "2");
    expect(await queue.getWaitingCount()).toBe(4);
  });
});
