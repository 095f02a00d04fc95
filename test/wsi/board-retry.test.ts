/**
 * A slide whose transfer failed for good (destination down) is sent by a retry of its failed send job
 * in Bull Board: its series goes again from the outbox, the transfer record ends done and the upload
 * becomes sent.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { attachFile, waitForUpload } from "../../src/wsi/cli.js";
import { uploadStore } from "../../src/wsi/uploads.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { authOf, roleUsers } from "../web/roles-kit.js";
import { vipsPyramid } from "./support/fixtures.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
let dir: string;
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let web: WebHandle;
let pacsPort: number;
let pacs: Storescp | undefined;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "fiona-wsi-retry-"));
  pacsPort = await freePort();
  cfg = testConfig({
    secret: "wsi-retry-secret-0123456789",
    transfer: { backoffMs: 100, attempts: 2, timeoutMs: 3000 },
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
});

afterAll(async () => {
  await web?.close();
  await workers?.close();
  await pacs?.stop();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a slide retried in Bull Board", () => {
  it("is sent from the outbox once the destination is up, and its upload becomes sent", async () => {
    const upload = await attachFile(cfg, vipsPyramid(dir, { width: 600, height: 400, name: "s.tif" }), {
      project: "PROJ",
      participant: "PROJ_0001",
    });
    const failed = await waitForUpload(cfg, upload.id, 100);
    expect(failed.state).toBe("failed");
    const transfers = new TransferRegistry(redis, cfg.redis.prefix);
    const first = await transfers.get(failed.requestId!);
    expect(first).toMatchObject({ status: "failed", filesSent: 0, runs: 1 });

    const sends = createQueue(QUEUES.send, redis, cfg.redis.prefix);
    const [send] = (await sends.getJobs(["failed"])).filter((j) => j.data.uploadId === upload.id);
    await sends.close();
    expect(send?.data.prepared).toBe(true);

    const pacsDir = path.join(dir, "pacs");
    pacs = await startStorescp(pacsDir, ["+xa"], { port: pacsPort });
    const res = await fetch(`${web.url}/admin/queues/api/queues/${QUEUES.send}/${send!.id}/retry`, {
      method: "PUT",
      headers: { ...authOf("operator"), "Content-Type": "application/json" },
    });
    expect(res.status).toBe(204);

    const done = await waitFor(
      async () => {
        const t = await transfers.get(failed.requestId!);
        return t && t.runs === 2 && t.status !== "queued" ? t : undefined;
      },
      "the second run",
      30_000,
      100,
    );
    expect(done).toMatchObject({ status: "done", filesFailed: 0 });
    expect(done.error).toBeUndefined();
    expect(done.filesSent).toBe(first!.sourceFiles);
    expect(readdirSync(pacsDir).filter((f) => !f.startsWith("."))).toHaveLength(done.filesSent);
    await waitFor(async () => (await uploadStore(cfg).get(upload.id))?.state === "sent", "the upload sent");
  });
});
