/**
 * Triggers from the real stages: a study routed to a project arrives (study-arrived by project and by
 * called AE title) and its transfer to a research PACS that refuses connections fails (transfer-failed).
 * The webhook bodies and the automation jobs carry identifiers only, although the participant of this
 * project is the patient ID itself.
 */
import { createServer } from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { receiveLocally } from "../support/pipeline.js";

const study = generateStudy({
  outDir: mkdtempSync(path.join(tmpdir(), "fiona-automation-gen-")),
  seed: "automation-triggers",
  series: 2,
  instancesPerSeries: 2,
  fileSize: 2048,
  phi: { patientId: "PHIMARK_RT", patientName: "PHIMARK^TRIGGER" },
});

let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let server: ReturnType<typeof createServer>;
const hits: Array<{ path: string; body: Record<string, unknown> }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString()));
    req.on("end", () => {
      hits.push({ path: req.url ?? "", body: JSON.parse(raw) as Record<string, unknown> });
      res.writeHead(204).end();
    });
  });
  const hookPort = await freePort();
  await new Promise<void>((r) => server.listen(hookPort, "127.0.0.1", r));
  const hook = (p: string) => ({ type: "webhook", url: `http://127.0.0.1:${hookPort}/${p}` }) as const;
  // Nothing listens there: every association is refused.
  const deadPacs = { aeTitle: "RESEARCH", host: "127.0.0.1", port: await freePort() };
  cfg = testConfig({
    secret: "automation-triggers-secret-0123456789",
    arrival: { quietSeconds: 1 },
    transfer: { attempts: 1, backoffMs: 100, timeoutMs: 2000 },
    projects: [{ name: "ROUTE", participantPattern: "PHIMARK_[A-Z]+", destination: deadPacs }],
    routing: { rules: [{ name: "router", callingAe: "ROUTER1", patientId: "PHIMARK", project: "ROUTE" }] },
    automation: {
      subscriptions: [
        {
          name: "arrived-route",
          trigger: { type: "study-arrived", project: "ROUTE" },
          action: hook("arrived"),
        },
        {
          name: "arrived-other",
          trigger: { type: "study-arrived", project: "OTHER" },
          action: hook("other"),
        },
        { name: "arrived-ae", trigger: { type: "study-arrived", calledAe: "FIONA" }, action: hook("ae") },
        {
          name: "failed-route",
          trigger: { type: "transfer-failed", project: "ROUTE" },
          action: hook("failed"),
        },
        { name: "done-any", trigger: { type: "transfer-done" }, action: hook("done") },
      ],
    },
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, createLogger("silent"), WORKER_QUEUES);
  await receiveLocally(cfg, redis, study, () => true, "ROUTER1");
}, 30_000);

afterAll(async () => {
  await workers?.close();
  redis?.disconnect();
  await new Promise((r) => server?.close(r));
  if (cfg) await cleanup(cfg);
});

const bodies = (p: string) => hits.filter((h) => h.path === `/${p}`).map((h) => h.body);

describe("automation triggers from the stages", () => {
  it("fires study-arrived for the routed project and the called AE title, and transfer-failed", async () => {
    const [failed] = await waitFor(
      () => (bodies("failed").length ? bodies("failed") : undefined),
      "the transfer-failed webhook",
      60_000,
    );
    expect(failed).toMatchObject({
      trigger: "transfer-failed",
      subscription: "failed-route",
      subject: { project: "ROUTE", studyInstanceUid: study.studyInstanceUid },
    });
    expect(String((failed!.subject as Record<string, unknown>).requestId)).not.toBe("");
    expect(bodies("arrived")).toHaveLength(1);
    expect(bodies("arrived")[0]).toMatchObject({
      subject: {
        studyInstanceUid: study.studyInstanceUid,
        project: "ROUTE",
        calledAe: "FIONA",
        callingAe: "ROUTER1",
      },
    });
    expect(bodies("ae")).toHaveLength(1);
    expect(bodies("other")).toHaveLength(0);
    expect(bodies("done")).toHaveLength(0);
  });

  it("puts no patient data in webhook bodies or automation jobs", async () => {
    const q = createQueue(QUEUES.automation, redis, cfg.redis.prefix);
    const jobs = await q.getJobs(["completed", "failed", "waiting", "active", "delayed"]);
    await q.close();
    expect(jobs.length).toBe(3);
    const all = JSON.stringify([hits, jobs.map((j) => j.data)]);
    for (const marker of ["PHIMARK", study.phi.accessionNumber, study.phi.patientBirthDate])
      expect(all).not.toContain(marker);
  });
});
