import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import type { SendResult } from "../../src/transfer/stage.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { ORTHANC, startOrthanc, type Orthanc } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";

const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-crash-${tag}-`));
const FILES = 300;
let cfg: FionaConfig;
let configFile: string;
let redis: Redis;
let orthanc: Orthanc;

/** A `fiona worker` process for every queue, as pm2 would run it. */
function workerProcess(): ChildProcess {
  return spawn(process.execPath, ["bin/fiona.js", "--config", configFile, "worker"], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, FIONA_LOG_LEVEL: "error" },
  });
}

async function instancesInOrthanc(): Promise<number> {
  const s = (await (await fetch(`${orthanc.url}/statistics`)).json()) as { CountInstances: number };
  return s.CountInstances;
}

describe.skipIf(!existsSync(ORTHANC))("a worker killed mid-transfer", () => {
  beforeAll(async () => {
    orthanc = await startOrthanc(tmp("orthanc"));
    cfg = testConfig({
      secret: "crash-secret-0123456789",
      arrival: { quietSeconds: 1 },
      transfer: { backoffMs: 200, timeoutMs: 5000 },
      projects: [
        { name: "CRASH", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: orthanc.dicomPort } },
      ],
    });
    configFile = path.join(cfg.dataDir, "fiona.config.json");
    writeFileSync(configFile, JSON.stringify({ ...cfg, log: { level: "error" } }));
    redis = new Redis(cfg.redis.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await orthanc?.stop();
    if (cfg) await cleanup(cfg);
  });

  it("is replaced, and the transfer completes with every file stored once", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "crash",
      series: 1,
      instancesPerSeries: FILES,
      fileSize: 64 * 1024,
    });
    let worker = workerProcess();
    await receiveLocally(cfg, redis, study);
    const paths = new SitePaths(cfg.dataDir);
    await waitFor(
      () =>
        readdirSync(paths.rawSeriesDir(study.studyInstanceUid, study.seriesInstanceUids[0]!)).length ===
          FILES || undefined,
      "ingest",
    );
    const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
    const transfers = new TransferRegistry(redis, cfg.redis.prefix);
    const started = await startTransfer(
      { cfg, paths, flow, transfers },
      { studyInstanceUid: study.studyInstanceUid, project: "CRASH", participant: "C1", requestedBy: "test" },
    );
    await flow.close();

    // Kill the worker while it is sending (some, not all, instances stored).
    await waitFor(
      async () => ((await instancesInOrthanc()) >= 20 ? true : undefined),
      "first instances",
      60_000,
      20,
    );
    worker.kill("SIGKILL");
    await new Promise((r) => worker.once("exit", r));
    const atKill = await instancesInOrthanc();
    expect(atKill).toBeLessThan(FILES);

    worker = workerProcess();
    try {
      const t = await waitFor(
        async () => {
          const r = await transfers.get(started.requestId);
          return r && r.status !== "queued" ? r : undefined;
        },
        "transfer to finish after the crash",
        150_000,
        200,
      );
      expect(t).toMatchObject({ status: "done", filesSent: FILES, filesFailed: 0 });
      expect(await instancesInOrthanc()).toBe(FILES);
      expect(await redis.scard(transfers.sentKey(started.requestId))).toBe(FILES);
      // Files stored before the crash were skipped after it; only one in flight at the kill may go twice.
      const sendQueue = createQueue(QUEUES.send, redis, cfg.redis.prefix);
      const job = await sendQueue.getJob(
        `${started.requestId}-${started.run}-${study.seriesInstanceUids[0]}-send`,
      );
      await sendQueue.close();
      const result = job?.returnvalue as SendResult;
      expect(result.skipped).toBeGreaterThanOrEqual(atKill - 1);
      expect(result.sent + result.skipped).toBe(FILES);
    } finally {
      worker.kill("SIGTERM");
      await new Promise((r) => worker.once("exit", r));
    }
  }, 240_000);
});
