/**
 * FIONA on a Sentinel-monitored Redis: master 17400, replicas 17401-17402, Sentinels 17405-17407.
 * The receiver and every worker connect through the Sentinels; the master is failed over by hand and
 * killed while studies arrive and another is being transferred.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { createRedis } from "../../src/queues/connection.js";
import { logRedisErrorsTo } from "../../src/queues/redis-errors.js";
import { createQueue, QUEUES } from "../../src/queues/index.js";
import { replicatedWrites } from "../../src/queues/replicas.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receivedFor, send, sendUntilStored, transferFinished, waitIngested } from "./flow.js";
import { startSentinelSet, type SentinelSet } from "./support.js";

const NODES = [17400, 17401, 17402];
const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const temps: string[] = [];
const tmp = (tag: string) => {
  const dir = mkdtempSync(path.join(tmpdir(), `fiona-ha-${tag}-`));
  temps.push(dir);
  return dir;
};

let set: SentinelSet;
let cfg: FionaConfig;
let pacs: Storescp;
let workers: WorkersHandle;
let receiver: ReceiverHandle;
let redis: Redis;
let flow: FlowProducer;
let transfers: TransferRegistry;

beforeAll(async () => {
  logRedisErrorsTo(log);
  set = await startSentinelSet({
    name: "fionaha",
    masterPort: NODES[0]!,
    replicaPorts: NODES.slice(1),
    sentinelPorts: [17405, 17406, 17407],
  });
  pacs = await startStorescp(tmp("pacs"));
  cfg = testConfig({
    dicomHost: "127.0.0.1",
    redis: {
      sentinels: set.sentinels,
      sentinelName: set.name,
      prefix: `fionatest-${randomBytes(4).toString("hex")}`,
      startLocal: false,
      waitReplicas: 1,
      waitTimeoutMs: 500,
    },
    secret: "ha-test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 300, attempts: 20, timeoutMs: 5000 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
  });
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  receiver = await startReceiver(cfg, { port: 0, host: "127.0.0.1", log, enqueueTimeoutMs: 3000 });
  // The test's own connection retries through the failover, as a worker's does.
  redis = createRedis(cfg.redis, "worker");
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
}, 90_000);

afterAll(async () => {
  await receiver?.close();
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  await set?.stop();
  // The Redis processes go with their keys; only files are left to remove.
  for (const dir of [...temps, ...(cfg ? [cfg.dataDir] : [])]) rmSync(dir, { recursive: true, force: true });
});

const deps = () => ({ cfg, paths: new SitePaths(cfg.dataDir), flow, transfers });

describe("Redis Sentinel", () => {
  it("answers a C-STORE with failure, never Success, while no replica confirms its job", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "ha-wait",
      instancesPerSeries: 1,
      fileSize: 2048,
    });
    const archived = path.join(
      new SitePaths(cfg.dataDir).archiveStudyDir(study.studyInstanceUid),
      `MR.${study.sopInstanceUids[0]}`,
    );
    const replicas = NODES.slice(1);
    for (const port of replicas) set.pause(port);
    try {
      const refused = await send(receiver.port, study.files);
      expect(refused.stored).toEqual([]);
      expect(refused.statuses).toEqual(["Refused: OutOfResources"]);
      expect(existsSync(archived)).toBe(false);
    } finally {
      for (const port of replicas) set.resume(port);
    }
    const stored = await sendUntilStored(receiver.port, study.files);
    expect(stored.storedAt.size).toBe(1);
    expect(existsSync(archived)).toBe(true);
    await waitIngested(cfg, study, study.sopInstanceUids);
  });

  it("keeps the job of every acknowledged image through a manual failover when every replica must confirm", async () => {
    // The old master takes writes for seconds after a replica was promoted; only a job every replica
    // holds is sure to be on the new master. No worker consumes this receiver's prefix, so each job
    // must still be there afterwards (a worker could otherwise act on a job the failover then loses).
    const strict = {
      ...cfg,
      dataDir: tmp("strict"),
      redis: { ...cfg.redis, prefix: `${cfg.redis.prefix}-strict`, waitReplicas: 2 },
    };
    const rx = await startReceiver(strict, { port: 0, host: "127.0.0.1", log, enqueueTimeoutMs: 3000 });
    const jobs = createQueue(QUEUES.ingest, redis, strict.redis.prefix);
    try {
      const study = generateStudy({
        outDir: tmp("gen"),
        seed: "ha-manual",
        series: 2,
        instancesPerSeries: 60,
        fileSize: 4096,
      });
      const old = await set.masterPort();
      const sending = sendUntilStored(rx.port, study.files);
      await waitFor(() => rx.stats().instancesStored >= 16, "first images stored", 20_000, 5);
      const failoverAt = Date.now();
      await set.failover();
      const sent = await sending;
      const promoted = await set.failedOver(old, 2);
      expect(promoted).not.toBe(old);
      expect(sent.refused.size, "some C-STOREs met the failover").toBeGreaterThan(0);
      const after = [...sent.storedAt.values()].filter((t) => t > failoverAt);
      expect(after.length, "C-STOREs succeed on the new master").toBeGreaterThan(0);
      expect([...sent.statuses].sort()).toEqual(["Refused: OutOfResources", "Success"]);

      const queued = new Set((await jobs.getWaiting(0, -1)).map((j) => path.basename(j.data.path)));
      const missing = study.sopInstanceUids.filter((sop) => !queued.has(`MR.${sop}`));
      expect(missing, "acknowledged images without an ingest job").toEqual([]);
    } finally {
      await rx.close();
      await jobs.close();
    }
  });

  it("loses no acknowledged image when the master is killed mid-stream; transfers finish after the failover", async () => {
    const first = generateStudy({
      outDir: tmp("gen"),
      seed: "ha-first",
      series: 2,
      instancesPerSeries: 40,
      fileSize: 4096,
    });
    const second = generateStudy({
      outDir: tmp("gen"),
      seed: "ha-second",
      series: 4,
      instancesPerSeries: 40,
      fileSize: 4096,
    });
    const initial = await sendUntilStored(receiver.port, first.files);
    expect(initial.refused.size).toBe(0);
    await waitIngested(cfg, first, first.sopInstanceUids);

    // The transfer of the first study and the arrival of the second run while the master dies.
    // The flow itself must survive the crash: it counts once both replicas hold it.
    const transfer = await replicatedWrites(
      redis,
      2,
      2000,
    )(() =>
      startTransfer(deps(), {
        studyInstanceUid: first.studyInstanceUid,
        project: "PROJ",
        participant: "PROJ_0001",
        requestedBy: "ha-test",
      }),
    );
    const master = await set.masterPort();
    // The master dies as soon as the research PACS has the first pseudonymized files.
    let killedAt = 0;
    let sentAtKill = 0;
    const killer = waitFor(() => readdirSync(pacs.dir).length > 0, "transfer sending", 20_000, 5).then(
      async () => {
        sentAtKill = readdirSync(pacs.dir).length;
        killedAt = Date.now();
        await set.nodes.get(master)!.stop("SIGKILL");
      },
    );
    // With one replica confirming, a crash loses nothing: the Sentinels promote the most advanced one.
    const sent = await sendUntilStored(receiver.port, second.files);
    await killer;
    expect(sentAtKill, "killed while the transfer was sending").toBeLessThan(80);
    const promoted = await set.failedOver(master, 1);
    expect(promoted).not.toBe(master);
    expect(sent.refused.size, "some C-STOREs met the outage").toBeGreaterThan(0);
    const after = [...sent.storedAt.values()].filter((t) => t > killedAt);
    expect(after.length, "C-STOREs succeed again after the failover").toBeGreaterThan(0);
    expect([...sent.statuses].sort()).toEqual(["Refused: OutOfResources", "Success"]);

    // Every acknowledged image, before, during and after the failover, reached ingest.
    await waitIngested(cfg, second, second.sopInstanceUids);

    const t1 = await transferFinished(transfers, transfer.requestId, transfer.run);
    expect(t1).toMatchObject({ status: "done", filesSent: 80, filesFailed: 0 });
    expect(receivedFor(pacs.dir, t1.pseudoStudyInstanceUid!, first)).toHaveLength(80);

    const again = await startTransfer(deps(), {
      studyInstanceUid: second.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0002",
      requestedBy: "ha-test",
    });
    const t2 = await transferFinished(transfers, again.requestId, again.run);
    expect(t2).toMatchObject({ status: "done", filesSent: 160, filesFailed: 0 });
    expect(receivedFor(pacs.dir, t2.pseudoStudyInstanceUid!, second)).toHaveLength(160);
  });
});
