/**
 * The backup and restore of docs/operations.md, done for real: pipeline state in a private Redis
 * (AOF on, as in production) and its dataDir, backed up with `redis-cli --rdb` and tar, wiped, and
 * restored; the study list, transfer history, sent-set, auto-ID mapping and audit log must be back.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { AuditLog } from "../../src/registry/audit.js";
import { AutoIdRegistry } from "../../src/registry/autoid.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";
import { startPrivateRedis, type PrivateRedis } from "./redis-server.js";

const PRODUCTION = ["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"];
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-backup-${tag}-`));
const log = createLogger("silent");

let server: PrivateRedis;
let redis: Redis;
let pacs: Storescp;
let cfg: FionaConfig;
let workers: WorkersHandle | undefined;
let flow: FlowProducer;
const backupDir = tmp("copy");

const study = generateStudy({
  outDir: tmp("gen"),
  seed: "backup",
  series: 2,
  instancesPerSeries: 3,
  fileSize: 4096,
});
const FILES = 6;

beforeAll(async () => {
  server = await startPrivateRedis(17305, PRODUCTION);
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  const base = testConfig({
    secret: "backup-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { backoffMs: 300, attempts: 5, timeoutMs: 5000 },
    projects: [
      {
        name: "AUTO",
        participantPattern: "AU_[0-9]{4}",
        autoId: { aeTitle: "AUTOID", pattern: "AU_[0-9]{4}" },
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
  });
  cfg = { ...base, redis: { ...base.redis, url: server.url } };
  redis = server.client();
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
}, 30_000);

afterAll(async () => {
  await workers?.close();
  await flow?.close();
  await server?.remove();
  await pacs?.stop();
  for (const dir of [cfg?.dataDir, backupDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const registries = () => ({
  studies: new StudyRegistry(redis, cfg.redis.prefix),
  transfers: new TransferRegistry(redis, cfg.redis.prefix),
  autoIds: new AutoIdRegistry(redis, cfg.redis.prefix, cfg.secret),
  audit: new AuditLog(redis, cfg.redis.prefix),
});

async function runTransfer(participant: string, run: number): Promise<TransferRecord> {
  const { transfers } = registries();
  const deps = { cfg, paths: new SitePaths(cfg.dataDir), flow, transfers };
  const started = await startTransfer(deps, {
    studyInstanceUid: study.studyInstanceUid,
    project: "AUTO",
    participant,
    requestedBy: "test",
  });
  expect(started.run).toBe(run);
  return waitFor(
    async () => {
      const t = await transfers.get(started.requestId);
      return t && t.runs === run && t.status !== "queued" ? t : undefined;
    },
    `transfer run ${run}`,
    60_000,
    100,
  );
}

const received = () => readdirSync(pacs.dir).length;
type SendOutcome = { sent: number; skipped: number };

describe("backup and restore", () => {
  it("brings the study list, transfer history, sent-set, auto-ID mapping and audit log back", async () => {
    // Real pipeline state: a received study, its auto-ID, a transfer to the research PACS, an audit entry.
    workers = await startWorkers(cfg, log, WORKER_QUEUES);
    await receiveLocally(cfg, redis, study);
    await waitFor(
      async () => (await registries().studies.get(study.studyInstanceUid))?.status === "arrived",
      "arrival",
    );
    const { participant } = await registries().autoIds.idFor(cfg.projects[0]!, study.phi.patientId);
    const first = await runTransfer(participant, 1);
    expect(first).toMatchObject({ status: "done", filesSent: FILES });
    expect(received()).toBe(FILES);
    await registries().audit.record({
      user: "op",
      action: "assign",
      study: study.studyInstanceUid,
      project: "AUTO",
      participant,
      requestId: first.requestId,
    });
    const before = {
      studies: await registries().studies.list(),
      transfer: await registries().transfers.get(first.requestId),
      audit: await registries().audit.list(),
    };
    expect(before.studies.map((s) => s.studyInstanceUid)).toEqual([study.studyInstanceUid]);
    expect(before.audit).toHaveLength(1);

    // Back up while running: Redis first, then the data tree (files Redis knows of are then on disk).
    const rdb = path.join(backupDir, "fiona.rdb");
    execFileSync("redis-cli", ["-p", String(server.port), "--rdb", rdb], { stdio: "ignore" });
    execFileSync("tar", ["-C", cfg.dataDir, "-cf", path.join(backupDir, "data.tar"), "."]);

    // Lose everything.
    await workers.close();
    workers = undefined;
    await redis.flushall();
    rmSync(cfg.dataDir, { recursive: true, force: true });
    expect(await registries().studies.list()).toEqual([]);

    // Restore: Redis stopped, the AOF (which now holds the FLUSHALL) moved aside, the RDB loaded with
    // AOF off, AOF switched on again from the loaded data, then a normal start from that AOF.
    await server.stop();
    renameSync(path.join(server.dir, "appendonlydir"), path.join(server.dir, "appendonlydir.before-restore"));
    copyFileSync(rdb, path.join(server.dir, "dump.rdb"));
    await server.start(["--appendonly", "no", "--maxmemory-policy", "noeviction"]);
    await redis.config("SET", "appendonly", "yes");
    await waitFor(async () => {
      const info = await redis.info("persistence");
      return (
        /aof_rewrite_in_progress:0/.test(info) &&
        /aof_rewrite_scheduled:0/.test(info) &&
        /aof_last_bgrewrite_status:ok/.test(info)
      );
    }, "the AOF rewrite");
    await server.stop();
    rmSync(path.join(server.dir, "dump.rdb"));
    await server.start(PRODUCTION);
    mkdirSync(cfg.dataDir, { recursive: true });
    execFileSync("tar", ["-C", cfg.dataDir, "-xf", path.join(backupDir, "data.tar")]);

    // Everything is back, from the AOF alone.
    const after = registries();
    expect(await after.studies.list()).toEqual(before.studies);
    expect(await after.transfers.get(first.requestId)).toEqual(before.transfer);
    expect(await after.transfers.sentCount(first.requestId)).toBe(FILES);
    expect(await after.autoIds.lookup("AUTO", study.phi.patientId)).toBe(participant);
    expect(await after.audit.list()).toEqual(before.audit);
    expect(existsSync(new SitePaths(cfg.dataDir).rawStudyDir(study.studyInstanceUid))).toBe(true);

    // And it is usable: a new run of the request finds the files and sends nothing twice.
    workers = await startWorkers(cfg, log, WORKER_QUEUES);
    const second = await runTransfer(participant, 2);
    expect(second).toMatchObject({ status: "done", filesSent: FILES });
    const sendQueue = createQueue(QUEUES.send, redis, cfg.redis.prefix);
    const results = await Promise.all(
      study.seriesInstanceUids.map(
        async (s) => (await sendQueue.getJob(`${first.requestId}-2-${s}-send`))?.returnvalue as SendOutcome,
      ),
    );
    await sendQueue.close();
    expect(results.map((r) => [r.sent, r.skipped])).toEqual([
      [0, 3],
      [0, 3],
    ]);
  }, 60_000);
});
