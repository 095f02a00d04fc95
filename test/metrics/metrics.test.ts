import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { printStatus } from "../../src/cli/inspect.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import type { MetricsSnapshot } from "../../src/metrics/collect.js";
import { startReceiverMetrics } from "../../src/metrics/receiver.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/server.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { recordHeartbeat } from "../../src/schedules/heartbeat-state.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { asTestAdmin, testAdminUser } from "../web/helpers.js";
import { generateStudy } from "../support/generate.js";
import { storescu } from "../receiver/helpers.js";
import { parsePrometheus, sampleValue } from "./prom-parser.js";

const study = generateStudy({
  outDir: mkdtempSync(path.join(tmpdir(), "fiona-metrics-gen-")),
  seed: "metrics",
  modality: "MR",
  series: [{ description: "t1_mprage_sag" }, { description: "t2_tse_tra" }],
  instancesPerSeries: 3,
  fileSize: 4096,
});
const FILES = study.files.length;

let cfg: FionaConfig;
let workers: WorkersHandle;
let receiver: ReceiverHandle;
let rxMetrics: ReturnType<typeof startReceiverMetrics>;
let web: WebHandle;
const lines: Array<Record<string, unknown>> = [];
const logger = createLogger("info", "fiona", {
  write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
});

/** Prometheus' credentials: the bearer token of web.metricsToken. */
const METRICS_TOKEN = "metrics-test-scrape-token-0123456789";
const asPrometheus = { Authorization: `Bearer ${METRICS_TOKEN}` };

const scrape = async () => {
  const res = await fetch(`${web.url}/metrics`, { headers: asPrometheus });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};

beforeAll(async () => {
  cfg = testConfig({
    arrival: { quietSeconds: 1 },
    web: { metricsToken: METRICS_TOKEN, users: [testAdminUser] },
  });
  workers = await startWorkers(cfg, logger, ["ingest", "arrival", "study-arrived"]);
  receiver = await startReceiver(cfg, { log: logger, port: 0, host: "127.0.0.1" });
  rxMetrics = startReceiverMetrics(cfg, receiver.stats, 100);
  web = await startWeb({ config: cfg, port: 0, host: "127.0.0.1", logger });
  const sent = await storescu(receiver.port, study.files);
  expect(sent.code).toBe(0);
}, 60_000);

afterAll(async () => {
  await web?.close();
  await receiver?.close();
  await rxMetrics?.close();
  await workers?.close();
  if (cfg) await cleanup(cfg);
});

describe("/metrics", () => {
  it("parses as Prometheus text and counts what the receiver and workers did", async () => {
    const fams = await waitFor(async () => {
      const f = parsePrometheus(await scrape());
      const done = sampleValue(f, "fiona_jobs_completed_total", { queue: "arrival" });
      return sampleValue(f, "fiona_received_files_total") === FILES && done !== undefined && done >= 1
        ? f
        : undefined;
    }, "received files and an arrival in /metrics");
    expect(sampleValue(fams, "fiona_received_bytes_total")).toBeGreaterThan(FILES * 4096);
    expect(sampleValue(fams, "fiona_associations_total", { state: "accepted" })).toBe(1);
    expect(sampleValue(fams, "fiona_associations_active")).toBe(0);
    expect(sampleValue(fams, "fiona_jobs_completed_total", { queue: "ingest" })).toBe(FILES);
    expect(sampleValue(fams, "fiona_job_duration_seconds_count", { queue: "ingest" })).toBe(FILES);
    expect(sampleValue(fams, "fiona_queue_workers", { queue: "ingest" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(fams, "fiona_queue_jobs", { queue: "ingest", state: "completed" })).toBe(FILES);
    expect(sampleValue(fams, "fiona_disk_used_percent")).toBeGreaterThan(0);
    // Every queue and state is there, labels are queue/state/stage/le only.
    for (const f of fams.values())
      for (const s of f.samples)
        for (const k of Object.keys(s.labels)) expect(["queue", "state", "stage", "le"]).toContain(k);
  });

  it("carries no patient data and no study identifiers", async () => {
    const text = await scrape();
    for (const marker of [study.phi.patientName, study.phi.patientId, study.phi.accessionNumber, "PHIMARK"])
      expect(text).not.toContain(marker);
    expect(text).not.toContain(study.studyInstanceUid);
  });

  it("shows the heartbeat when the heartbeat has written it", async () => {
    const r = new Redis(cfg.redis.url);
    await recordHeartbeat(r, cfg.redis.prefix, { kind: "ok" });
    for (let i = 0; i < 3; i++)
      await recordHeartbeat(r, cfg.redis.prefix, { kind: "failed", error: "no answer" });
    r.disconnect();
    const fams = parsePrometheus(await scrape());
    expect(sampleValue(fams, "fiona_heartbeat_consecutive_failures")).toBe(3);
    expect(sampleValue(fams, "fiona_heartbeat_failures_total")).toBe(3);
    expect(sampleValue(fams, "fiona_heartbeat_last_ok_timestamp_seconds")).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
  });

  it("fiona status --json shows the same numbers", async () => {
    const out: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((s: string) => void out.push(s));
    try {
      await printStatus(cfg, true);
    } finally {
      spy.mockRestore();
    }
    const status = JSON.parse(out.join("\n")) as MetricsSnapshot;
    const fams = parsePrometheus(await scrape());
    expect(status.receiver.instancesStored).toBe(sampleValue(fams, "fiona_received_files_total"));
    expect(status.receiver.bytesReceived).toBe(sampleValue(fams, "fiona_received_bytes_total"));
    expect(status.jobs.ingest?.completed).toBe(
      sampleValue(fams, "fiona_jobs_completed_total", { queue: "ingest" }),
    );
    expect(status.queues.ingest.completed).toBe(FILES);
    expect(status.workers.ingest?.workers).toBe(
      sampleValue(fams, "fiona_queue_workers", { queue: "ingest" }),
    );
    expect(status.heartbeat?.consecutiveFailures).toBe(3);
  });
});

describe("log ids", () => {
  it("echoes a sane X-Request-Id, replaces an unsafe one, and logs it on the request line", async () => {
    const mine = await fetch(`${web.url}/api/status`, {
      headers: { ...asTestAdmin, "X-Request-Id": "scrape-42" },
    });
    expect(mine.headers.get("x-request-id")).toBe("scrape-42");
    const bad = await fetch(`${web.url}/healthz`, { headers: { "X-Request-Id": 'a b"c' } });
    const fresh = bad.headers.get("x-request-id")!;
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    const line = await waitFor(
      () => lines.find((l) => l.msg === "http request" && l.reqId === "scrape-42"),
      "the request's log line",
    );
    expect(line).toMatchObject({ method: "GET", path: "/api/status", status: 200 });
  });

  it("puts the queue and job id on every line a job writes", async () => {
    const arrived = await waitFor(() => lines.find((l) => l.msg === "study arrived"), "the arrival log line");
    expect(arrived).toMatchObject({ queue: "arrival", studyInstanceUid: study.studyInstanceUid });
    expect(typeof arrived.jobId).toBe("string");
    expect(arrived.jobId).not.toBe("");
    for (const marker of [study.phi.patientName, study.phi.patientId, "PHIMARK"])
      expect(JSON.stringify(lines)).not.toContain(marker);
  });
});
