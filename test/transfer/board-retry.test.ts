/**
 * Retries from Bull Board (its own HTTP API, through FIONA's guard) and from `fiona retry` bring the
 * records to their true outcome: a transfer whose destination was down is done after the retry of one
 * of its failed jobs, an export retried after failing for good is done, and neither leaves a
 * quarantine record behind.
 */
import { mkdtempSync, readdirSync, renameSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer, type Job, type Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import type { ExportRecord } from "../../src/export/store.js";
import { ExportStore } from "../../src/export/store.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { QuarantineStore } from "../../src/quarantine/store.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { AuditLog, type AuditEntry } from "../../src/registry/audit.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer, type StartedTransfer } from "../../src/transfer/start.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { fionaCli } from "../support/cli.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";
import { authOf, roleUsers, USERS, type Caller } from "../web/roles-kit.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-board-retry-${tag}-`));
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let web: WebHandle;
let flow: FlowProducer;
let transfers: TransferRegistry;
let quarantine: QuarantineStore;
let audit: AuditLog;
let pacsPort: number;
let pacsDir: string;
let pacs: Storescp | undefined;
const queues: Partial<Record<string, Queue>> = {};

const queue = (name: string): Queue =>
  (queues[name] ??= createQueue(name as "send", redis, cfg.redis.prefix));

async function boardPut(caller: Caller, p: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${web.url}/admin/queues/api/queues/${p}`, {
    method: "PUT",
    headers: { ...authOf(caller), "Content-Type": "application/json" },
  });
  return { status: res.status, body: await res.text() };
}

async function settled(requestId: string, run: number): Promise<TransferRecord> {
  return waitFor(
    async () => {
      const t = await transfers.get(requestId);
      return t && t.runs >= run && t.status !== "queued" ? t : undefined;
    },
    `run ${run} of ${requestId} to finish`,
    60_000,
    100,
  );
}

async function jobsOf(name: string, state: "failed" | "completed", requestId: string): Promise<Job[]> {
  return (await queue(name).getJobs([state], 0, -1)).filter((j) => j?.data?.requestId === requestId);
}

async function auditEntry(match: (e: AuditEntry) => boolean): Promise<AuditEntry> {
  return waitFor(async () => (await audit.list({ limit: 100 })).find(match), "the audit entry", 10_000);
}

async function receive(seed: string): Promise<GeneratedStudy> {
  const study = generateStudy({ outDir: tmp("gen"), seed, series: 2, instancesPerSeries: 3, fileSize: 2048 });
  await receiveLocally(cfg, redis, study);
  const raw = new SitePaths(cfg.dataDir).rawStudyDir(study.studyInstanceUid);
  await waitFor(() => {
    const n = study.seriesInstanceUids.reduce((sum, s) => {
      try {
        return sum + readdirSync(path.join(raw, s)).length;
      } catch {
        return sum;
      }
    }, 0);
    return n === 6 || undefined;
  }, "ingest");
  return study;
}

/** A transfer started while the destination is down: it fails for good (transfer.attempts is 2). */
async function failedTransfer(study: GeneratedStudy, participant: string): Promise<StartedTransfer> {
  await pacs?.stop();
  pacs = undefined;
  const started = await startTransfer(
    { cfg, paths: new SitePaths(cfg.dataDir), flow, transfers },
    {
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant,
      requestedBy: "test",
    },
  );
  const t = await settled(started.requestId, started.run);
  expect(t).toMatchObject({ status: "failed", filesSent: 0 });
  expect(t.error).toMatch(/ECONNREFUSED|refused|connect/i);
  return started;
}

async function destinationUp(): Promise<void> {
  pacs = await startStorescp(pacsDir, ["+xa"], { port: pacsPort });
}

beforeAll(async () => {
  pacsPort = await freePort();
  pacsDir = tmp("pacs");
  cfg = testConfig({
    secret: "board-retry-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { attempts: 2, backoffMs: 100, timeoutMs: 3000 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacsPort },
      },
    ],
    web: { users: roleUsers() },
  });
  redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  web = await startWeb({ config: cfg, connection: redis, logger: log, port: 0, host: "127.0.0.1" });
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
  quarantine = new QuarantineStore(redis, cfg.redis.prefix);
  audit = new AuditLog(redis, cfg.redis.prefix);
});

afterAll(async () => {
  await web?.close();
  await workers?.close();
  await flow?.close();
  for (const q of Object.values(queues)) await q?.close();
  await pacs?.stop();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

describe("a retry in Bull Board", () => {
  let study: GeneratedStudy;
  let first: StartedTransfer;

  it("of a failed send job runs the transfer request again, and the record ends done", async () => {
    study = await receive("board-retry-1");
    first = await failedTransfer(study, "PROJ_0001");
    const failedSends = await jobsOf(QUEUES.send, "failed", first.requestId);
    expect(failedSends).toHaveLength(2);
    expect(
      (await quarantine.list({ stage: QUEUES.send })).filter((r) => r.ids.requestId === first.requestId),
    ).toHaveLength(2);

    await destinationUp();
    const answer = await boardPut("operator", `${QUEUES.send}/${failedSends[0]!.id}/retry`);
    expect(answer.status).toBe(204);

    const t = await settled(first.requestId, 2);
    expect(t).toMatchObject({ status: "done", runs: 2, filesSent: 6, filesFailed: 0 });
    expect(t.error).toBeUndefined();
    expect(readdirSync(pacsDir).filter((f) => !f.startsWith("."))).toHaveLength(6);
    // The first run's failed jobs are replaced by the new run's, and nothing stays quarantined.
    expect(await jobsOf(QUEUES.send, "failed", first.requestId)).toEqual([]);
    expect((await quarantine.list()).filter((r) => r.ids.requestId === first.requestId)).toEqual([]);
    // What the Assign page shows follows the record.
    const page = (await (
      await fetch(`${web.url}/api/transfers/${first.requestId}`, { headers: authOf("operator") })
    ).json()) as { status: string; live: { state: string } };
    expect(page).toMatchObject({ status: "done", live: { state: "done" } });

    expect(
      await auditEntry((e) => e.action === "queues:retry" && e.requestId === first.requestId),
    ).toMatchObject({
      user: USERS.operator.name,
      queue: QUEUES.send,
      jobId: failedSends[0]!.id,
      project: "PROJ",
      participant: "PROJ_0001",
      run: 2,
      status: 204,
    });
  });

  it("of a job whose run is still going is refused with 409, and starts nothing", async () => {
    const sends = queue(QUEUES.send);
    await sends.pause();
    try {
      const started = await startTransfer(
        { cfg, paths: new SitePaths(cfg.dataDir), flow, transfers },
        {
          studyInstanceUid: study.studyInstanceUid,
          project: "PROJ",
          participant: "PROJ_0001",
          requestedBy: "test",
        },
      );
      const deid = await waitFor(
        async () =>
          (await jobsOf(QUEUES.deidentify, "completed", first.requestId)).find(
            (j) => j.data.run === started.run,
          ),
        "a de-identified series of the new run",
      );
      const answer = await boardPut("operator", `${QUEUES.deidentify}/${deid.id}/retry`);
      expect(answer.status).toBe(409);
      expect(answer.body).toMatch(/running/);
      expect((await transfers.get(first.requestId))?.runs).toBe(started.run);
    } finally {
      await sends.resume();
    }
    expect(await settled(first.requestId, 3)).toMatchObject({ status: "done", filesSent: 6 });
  });

  it("of an export that failed for good builds it, and the export record ends done", async () => {
    const exportsQueue = queue(QUEUES.export);
    await exportsQueue.pause();
    const outbox = path.join(new SitePaths(cfg.dataDir).outbox, first.requestId);
    let rec: ExportRecord;
    try {
      const res = await fetch(`${web.url}/api/exports`, {
        method: "POST",
        headers: { ...authOf("operator"), "Content-Type": "application/json" },
        body: JSON.stringify({
          studyInstanceUid: study.studyInstanceUid,
          project: "PROJ",
          participant: "PROJ_0001",
        }),
      });
      expect(res.status).toBe(202);
      rec = (await res.json()) as ExportRecord;
      expect(rec.source).toBe("transfer");
      // The transfer's pseudonymized files go away before the build: it fails for good.
      renameSync(outbox, `${outbox}.away`);
    } finally {
      await exportsQueue.resume();
    }
    const store = new ExportStore(cfg);
    const failed = await waitFor(async () => {
      const r = await store.get(rec.id);
      return r?.status === "failed" ? r : undefined;
    }, "the export to fail");
    expect(failed.error).toMatch(/no longer on disk/);
    const jobId = `export-${rec.id}`;
    await waitFor(async () => (await exportsQueue.getJob(jobId))?.finishedOn, "the job to fail for good");
    expect(await exportsQueue.getJob(jobId).then((j) => j?.getState())).toBe("failed");
    const records = () => quarantine.list({ stage: QUEUES.export });
    expect((await records()).filter((r) => r.job?.id === jobId)).toHaveLength(1);

    renameSync(`${outbox}.away`, outbox);
    expect((await boardPut("operator", `${QUEUES.export}/${jobId}/retry`)).status).toBe(204);
    const done = await waitFor(async () => {
      const r = await store.get(rec.id);
      return r?.status === "done" ? r : undefined;
    }, "the export to be built");
    expect(done.error).toBeUndefined();
    expect(done.manifest?.files.dicom).toBe(6);
    await waitFor(
      async () => (await records()).every((r) => r.job?.id !== jobId),
      "the quarantine record to go",
    );
    expect(
      await auditEntry((e) => e.action === "queues:retry" && e.jobId === jobId && e.status === 204),
    ).toMatchObject({ user: USERS.operator.name, queue: QUEUES.export });
  });
});

describe("fiona retry", () => {
  it("runs a failed transfer request again, as the Assign page's Retry, audited with the OS user", async () => {
    const cli = fionaCli(cfg);
    const study = await receive("board-retry-2");
    const started = await failedTransfer(study, "PROJ_0002");
    await destinationUp();
    const before = readdirSync(pacsDir).length;

    expect(await cli("retry", started.requestId)).toMatch(
      new RegExp(`^transfer ${started.requestId} run 2: 2 series queued`),
    );
    const t = await settled(started.requestId, 2);
    expect(t).toMatchObject({ status: "done", filesSent: 6, filesFailed: 0 });
    expect(t.error).toBeUndefined();
    expect(readdirSync(pacsDir).length - before).toBe(6);
    expect(await auditEntry((e) => e.action === "retry" && e.requestId === started.requestId)).toMatchObject({
      user: os.userInfo().username,
      via: "cli",
      study: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0002",
      run: 2,
    });
    await expect(cli("retry", "0123456789abcdef01234567")).rejects.toThrow(/no transfer request/);
  });
});

describe("a queue-wide retry in Bull Board", () => {
  it("runs every transfer request with a failed send again, once each", async () => {
    const study = await receive("board-retry-3");
    const started = await failedTransfer(study, "PROJ_0003");
    await destinationUp();
    const failed = (await queue(QUEUES.send).getJobs(["failed"], 0, -1)).filter(Boolean);
    const requests = new Set(failed.map((j) => j.data.requestId as string));
    expect(requests.has(started.requestId)).toBe(true);
    const runsBefore = new Map(
      await Promise.all([...requests].map(async (id) => [id, (await transfers.get(id))!.runs] as const)),
    );

    expect(await boardPut("operator", `${QUEUES.send}/retry/failed`)).toMatchObject({ status: 403 });
    const answer = await boardPut("admin", `${QUEUES.send}/retry/failed`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ retried: failed.length, skipped: 0 });

    for (const id of requests) {
      const t = await settled(id, runsBefore.get(id)! + 1);
      expect(t).toMatchObject({ status: "done", runs: runsBefore.get(id)! + 1 });
      expect(t.error).toBeUndefined();
    }
    expect(await queue(QUEUES.send).getJobs(["failed"], 0, -1)).toEqual([]);
    expect(await auditEntry((e) => e.action === "queues:retry-all" && e.status === 200)).toMatchObject({
      user: USERS.admin.name,
      queue: QUEUES.send,
      detail: `jobs failed: ${requests.size} transfer requests run again, 0 jobs skipped`,
    });
  });
});
