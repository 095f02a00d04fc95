/**
 * A cancel request is used up by the run it stopped: an analysis job cancelled and then retried in
 * Bull Board (its HTTP API, through FIONA's guard) runs the algorithm again instead of being
 * cancelled again at once.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import type { Job } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueAnalysis, requestCancel, type AnalysisQueue } from "../../src/analysis/trigger.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { receiveLocally } from "../support/pipeline.js";
import { authOf, roleUsers } from "../web/roles-kit.js";

const ALGO = fileURLToPath(new URL("./fixtures/algo.mjs", import.meta.url));
const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");

let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let web: WebHandle;
let queue: AnalysisQueue;
let study: GeneratedStudy;

async function settled(id: string): Promise<Job> {
  return waitFor(
    async () => {
      const state = await queue.getJobState(id);
      return state === "completed" || state === "failed" ? await queue.getJob(id) : undefined;
    },
    `analysis job ${id}`,
    60_000,
    100,
  );
}

beforeAll(async () => {
  cfg = testConfig({
    secret: "retry-after-cancel-secret-0123",
    projects: [{ name: "PROJ" }],
    web: { users: roleUsers() },
    analysis: {
      runtime: "process",
      jobs: [
        {
          name: "sleeper",
          runtime: "process",
          command: [process.execPath, ALGO, "{input}", "{output}", "{descr}"],
          env: { ALGO_MODE: "sleep" },
          // A run that is not cancelled ends here, with its own reason.
          limits: { timeoutSeconds: 4 },
          results: { redcap: false },
        },
      ],
    },
  });
  study = generateStudy({
    outDir: mkdtempSync(path.join(tmpdir(), "fiona-analysis-retry-")),
    seed: "analysis-retry",
    instancesPerSeries: 2,
    fileSize: 2048,
  });
  redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  workers = await startWorkers(cfg, log, [QUEUES.ingest, QUEUES.analysis]);
  await receiveLocally(cfg, redis, study);
  const paths = new SitePaths(cfg.dataDir);
  await waitFor(
    () => existsSync(paths.seriesJson(study.studyInstanceUid, study.seriesInstanceUids[0]!)),
    "ingest",
  );
  web = await startWeb({ config: cfg, connection: redis, logger: log, port: 0, host: "127.0.0.1" });
  queue = createQueue(QUEUES.analysis, redis, cfg.redis.prefix);
}, 60_000);

afterAll(async () => {
  await web?.close();
  await workers?.close();
  await queue?.close();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

describe("an analysis job retried after it was cancelled", () => {
  it("runs again, to its own end", async () => {
    const id = await enqueueAnalysis(cfg, queue, {
      job: "sleeper",
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "P1",
    });
    await waitFor(
      async () => (await queue.getJobLogs(id)).logs.some((l) => l.includes("sleeping")),
      "the algorithm to run",
    );
    expect(await requestCancel(queue, id)).toBe(true);
    expect((await settled(id)).failedReason).toBe("analysis job sleeper was cancelled");
    expect((await queue.getJob(id))?.data.cancel).toBeUndefined();

    const res = await fetch(`${web.url}/admin/queues/api/queues/${QUEUES.analysis}/${id}/retry`, {
      method: "PUT",
      headers: { ...authOf("admin"), "Content-Type": "application/json" },
    });
    expect(res.status).toBe(204);
    await waitFor(async () => (await queue.getJobState(id)) !== "failed", "the retry to start");
    expect((await settled(id)).failedReason).toBe(
      "analysis job sleeper exceeded its time limit of 4 s and was killed",
    );
  }, 60_000);
});
