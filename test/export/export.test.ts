import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FlowProducer, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { buildExport, dcm2niixVersion } from "../../src/export/build.js";
import { ExportStore, exportsTempDir, type ExportRequest } from "../../src/export/store.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { clearExports } from "../../src/schedules/clear-exports.js";
import { startTransfer } from "../../src/transfer/start.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-export-${tag}-`));
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let flow: FlowProducer;
let pacs: Storescp;
let store: ExportStore;
let study: GeneratedStudy;
const hasDcm2niix = !!(await dcm2niixVersion());

function unzipList(zip: string): string[] {
  return execFileSync("zipinfo", ["-1", zip], { encoding: "utf8" }).split("\n").filter(Boolean);
}

function unzipAll(zip: string): string {
  const dir = tmp("unzip");
  execFileSync("unzip", ["-q", zip, "-d", dir]);
  return dir;
}

function assertNoPhi(dir: string) {
  const markers = [
    study.phi.patientName,
    study.phi.patientId,
    study.phi.accessionNumber,
    study.phi.otherPatientId,
    study.phi.referringPhysicianName,
    study.phi.patientAddress,
  ].map((m) => Buffer.from(m));
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)],
    );
  const files = walk(dir);
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const m of markers) expect(bytes.includes(m), `${m.toString()} in ${f}`).toBe(false);
  }
}

const request = (r: Partial<ExportRequest>): ExportRequest => ({
  studyInstanceUid: study.studyInstanceUid,
  project: "PROJ",
  participant: "PROJ_0001",
  event: "baseline",
  layout: "DEFAULT",
  source: "received",
  requestedBy: "test",
  ...r,
});

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa", "+uf"]);
  cfg = testConfig({
    secret: "test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        events: ["baseline"],
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  store = new ExportStore(cfg);
  study = generateStudy({
    outDir: tmp("gen"),
    seed: "export-1",
    series: 2,
    instancesPerSeries: 4,
    fileSize: 4096,
  });
  await receiveLocally(cfg, redis, study);
  const paths = new SitePaths(cfg.dataDir);
  await waitFor(() => {
    const n = study.seriesInstanceUids
      .map((s) =>
        existsSync(paths.rawSeriesDir(study.studyInstanceUid, s))
          ? readdirSync(paths.rawSeriesDir(study.studyInstanceUid, s)).length
          : 0,
      )
      .reduce((a, b) => a + b, 0);
    return n === 8 || undefined;
  }, "ingest");
});

afterAll(async () => {
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  if (cfg) await cleanup(cfg);
});

const build = async (r: Partial<ExportRequest>, extra: { forceZip64?: boolean } = {}) => {
  const rec = await store.create(request(r));
  return buildExport({ cfg, paths: new SitePaths(cfg.dataDir), store, ...extra }, rec.id);
};

describe("export archives", () => {
  it("builds the default layout from a received study pseudonymized on the fly, with a manifest", async () => {
    const rec = await build({});
    expect(rec).toMatchObject({ status: "done", manifest: { files: { dicom: 8, total: 8 }, series: 2 } });
    const zip = store.zipPath(rec.id);
    expect(rec.size).toBe(readFileSync(zip).length);
    const names = unzipList(zip);
    expect(names.filter((n) => n.endsWith(".dcm"))).toHaveLength(8);
    expect(
      names.every(
        (n) => n === "manifest.json" || /^baseline\/DICOM\/\d{4}_[A-Za-z0-9._-]+\/\d+\.dcm$/.test(n),
      ),
    ).toBe(true);
    const dir = unzipAll(zip);
    const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(manifest).toMatchObject({
      project: "PROJ",
      participant: "PROJ_0001",
      event: "baseline",
      layout: "DEFAULT",
    });
    expect(manifest.tool).toMatchObject({ name: "fiona" });
    assertNoPhi(dir);
    expect(readdirSync(exportsTempDir(cfg))).toHaveLength(0);
  });

  it("builds the PURE layout from the pseudonymized headers, as ZIP64", async () => {
    const rec = await build({ layout: "PURE" }, { forceZip64: true });
    const zip = store.zipPath(rec.id);
    const names = unzipList(zip).filter((n) => n.endsWith(".dcm"));
    expect(names).toHaveLength(8);
    for (const n of names)
      expect(n).toMatch(/^[^/]+\/PROJ_0001\/\d{8}_\d{6}_baseline\/\d{4}_[A-Za-z0-9._-]+\/[1-4]\.dcm$/);
    expect(execFileSync("unzip", ["-t", zip], { encoding: "utf8" })).toContain("No errors detected");
    // ZIP64 end-of-central-directory record and locator, and a classic record pointing at them.
    const tail = readFileSync(zip).subarray(-200);
    expect(tail.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
    expect(tail.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBe(true);
    expect(execFileSync("zipinfo", ["-v", zip], { encoding: "utf8" })).toContain(
      "version of encoding software:                   4.5",
    );
    assertNoPhi(unzipAll(zip));
  });

  it.skipIf(!hasDcm2niix)("converts to NIfTI with dcm2niix", async () => {
    const rec = await build({ layout: "NIFTI" });
    const names = unzipList(store.zipPath(rec.id));
    expect(names.some((n) => /^baseline\/NIFTI\/.+\.nii\.gz$/.test(n))).toBe(true);
    expect(names.some((n) => /^baseline\/NIFTI\/.+\.json$/.test(n))).toBe(true);
    expect(names.every((n) => n === "manifest.json" || /\.(nii\.gz|json|bval|bvec)$/.test(n))).toBe(true);
    expect(rec.manifest?.tool.dcm2niix).toBeTruthy();
  });

  it("fails clearly when dcm2niix is missing", async () => {
    const saved = cfg.exports.dcm2niix;
    cfg.exports.dcm2niix = "/nonexistent/dcm2niix";
    try {
      await expect(build({ layout: "NIFTI" })).rejects.toThrow(/needs dcm2niix/);
    } finally {
      cfg.exports.dcm2niix = saved;
    }
  });

  it("exports a transferred study from its outbox through the export queue", async () => {
    const transfers = new TransferRegistry(redis, cfg.redis.prefix);
    const started = await startTransfer(
      { cfg, paths: new SitePaths(cfg.dataDir), flow, transfers },
      {
        studyInstanceUid: study.studyInstanceUid,
        project: "PROJ",
        participant: "PROJ_0002",
        requestedBy: "test",
      },
    );
    const t = await waitFor(
      async () => {
        const r = await transfers.get(started.requestId);
        return r && r.status !== "queued" ? r : undefined;
      },
      "transfer",
      60_000,
      100,
    );
    expect(t.status).toBe("done");
    const rec = await store.create(
      request({
        source: "transfer",
        requestId: started.requestId,
        participant: "PROJ_0002",
        layout: "DEFAULT",
      }),
    );
    delete (rec as { event?: string }).event;
    await store.save({ ...rec });
    const q = createQueue(QUEUES.export, redis, cfg.redis.prefix);
    const events = new QueueEvents(QUEUES.export, {
      connection: new Redis(cfg.redis.url, { maxRetriesPerRequest: null }),
      prefix: cfg.redis.prefix,
    });
    try {
      const job = await q.add("export", { exportId: rec.id });
      await job.waitUntilFinished(events, 60_000);
    } finally {
      await events.close();
      await q.close();
    }
    const done = (await store.get(rec.id))!;
    expect(done).toMatchObject({
      status: "done",
      manifest: { pseudoStudyInstanceUid: t.pseudoStudyInstanceUid },
    });
    const names = unzipList(store.zipPath(rec.id));
    expect(names.filter((n) => n.startsWith("noevent/DICOM/"))).toHaveLength(8);
    assertNoPhi(unzipAll(store.zipPath(rec.id)));
  });

  it("clearExports removes old temp folders and the oldest exports of a full disk", async () => {
    const old = path.join(exportsTempDir(cfg), "stale");
    mkdirSync(old, { recursive: true });
    writeFileSync(path.join(old, "x"), "x");
    const past = new Date(Date.now() - 2 * 24 * 3600_000);
    utimesSync(old, past, past);
    const part = path.join(store.dir, "0123.zip.part");
    writeFileSync(part, "half");
    utimesSync(part, past, past);
    const fresh = path.join(exportsTempDir(cfg), "fresh");
    mkdirSync(fresh, { recursive: true });
    const before = (await store.list()).filter((r) => r.status === "done");
    expect(before.length).toBeGreaterThanOrEqual(2);
    let used = 95;
    const r = await clearExports(cfg, undefined, { usage: () => Promise.resolve((used -= 3)) });
    expect(r.tempRemoved.sort()).toEqual(["0123.zip.part", "stale"]);
    expect(existsSync(part)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    // 92 → delete oldest → 89: one removed, the oldest one.
    expect(r.exportsRemoved).toEqual([before.at(-1)!.id]);
    expect(existsSync(store.zipPath(before.at(-1)!.id))).toBe(false);
    const real = await clearExports(cfg);
    expect(real.usedPercent).toBeGreaterThanOrEqual(0);
  });
});
