/**
 * FIONA on a Redis Cluster of three masters (17410-17412): receiver, heartbeat, scheduler and every
 * worker started as `fiona start` does (runRoles), keys under a hash-tagged prefix.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
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
import { QuarantineStore } from "../../src/quarantine/store.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { runRoles, type Running } from "../../src/roles/run.js";
import { startTransfer } from "../../src/transfer/start.js";
import { freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receivedFor, send, transferFinished, waitIngested } from "./flow.js";
import { startCluster, type RedisCluster } from "./support.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const temps: string[] = [];
const tmp = (tag: string) => {
  const dir = mkdtempSync(path.join(tmpdir(), `fiona-ha-${tag}-`));
  temps.push(dir);
  return dir;
};

let cluster: RedisCluster;
let cfg: FionaConfig;
let pacs: Storescp;
let roles: Running;
let redis: Redis;
let flow: FlowProducer;
let transfers: TransferRegistry;

beforeAll(async () => {
  logRedisErrorsTo(log);
  cluster = await startCluster([17410, 17411, 17412]);
  pacs = await startStorescp(tmp("pacs"));
  cfg = testConfig({
    dicomHost: "127.0.0.1",
    dicomPort: await freePort(),
    redis: {
      cluster: cluster.nodes,
      prefix: `{fionatest-${randomBytes(4).toString("hex")}}`,
      startLocal: false,
    },
    secret: "ha-test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 100, attempts: 2, timeoutMs: 3000 },
    schedules: { heartbeat: { every: 1000 } },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
      { name: "DOWN", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: await freePort() } },
    ],
  });
  roles = await runRoles(cfg, { receiver: true, workers: WORKER_QUEUES, scheduler: true }, log);
  redis = createRedis(cfg.redis, "worker");
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
}, 90_000);

afterAll(async () => {
  await roles?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  await cluster?.stop();
  // The Redis processes go with their keys; only files are left to remove.
  for (const dir of [...temps, ...(cfg ? [cfg.dataDir] : [])]) rmSync(dir, { recursive: true, force: true });
});

const deps = () => ({ cfg, paths: new SitePaths(cfg.dataDir), flow, transfers });

describe("Redis Cluster", () => {
  it("receives, ingests, and sends a study pseudonymized, every key in the prefix's hash slot", async () => {
    const study = generateStudy({
      outDir: tmp("gen"),
      seed: "ha-cluster",
      series: 3,
      instancesPerSeries: 10,
      fileSize: 4096,
    });
    const sent = await send(cfg.dicomPort, study.files);
    expect(sent.failed).toEqual([]);
    await waitIngested(cfg, study, study.sopInstanceUids);

    const started = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0001",
      requestedBy: "ha-test",
    });
    const t = await transferFinished(transfers, started.requestId, started.run);
    expect(t).toMatchObject({ status: "done", filesSent: 30, filesFailed: 0, participant: "PROJ_0001" });
    expect(receivedFor(pacs.dir, t.pseudoStudyInstanceUid!, study)).toHaveLength(30);

    // A destination that is down: the send gives up and lands in its stage's quarantine.
    const down = await startTransfer(deps(), {
      studyInstanceUid: study.studyInstanceUid,
      project: "DOWN",
      participant: "D1",
      requestedBy: "ha-test",
    });
    await transferFinished(transfers, down.requestId, down.run);
    const quarantine = new QuarantineStore(redis, cfg.redis.prefix, log);
    await waitFor(async () => (await quarantine.list({ stage: "send" })).length > 0, "send quarantined");

    const byNode = await cluster.keysByNode();
    const keys = [...byNode.values()].flat();
    const outside = keys.filter((k) => !k.startsWith(`${cfg.redis.prefix}:`));
    expect(outside, "keys outside the prefix").toEqual([]);
    expect(
      [...byNode.values()].filter((k) => k.length > 0),
      "nodes holding keys",
    ).toHaveLength(1);
    const families = new Set(keys.map((k) => k.slice(cfg.redis.prefix.length + 1).split(":")[0]));
    for (const f of ["registry", "metrics", "quarantine", "heartbeat", "ingest", "send", "transfer"]) {
      expect(families, `a ${f} key`).toContain(f);
    }
  });
});
