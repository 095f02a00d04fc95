/**
 * Reprocessing after a rule change: a study ingested under rules A, the rules file replaced by B,
 * `fiona reclassify` → the series JSON carries B's ClassifyType, the incoming list shows it and the
 * study arrives again (study-arrived: routing, REDCap, analysis). Routing itself does not key on
 * ClassifyType, so the assertion is that the arrival path re-runs, and only when a type changed.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import type { SeriesSummary } from "../../src/ingest/series-summary.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import type { ReclassifyResult } from "../../src/reclassify/run.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { receiveLocally } from "../support/pipeline.js";
import { capturedLogger } from "../support/redcap-sim.js";

const run = promisify(execFile);

const rule = (type: string, tag: [string, string], value: string) => ({
  type,
  id: `${type}ID`,
  rules: [{ tag, value }],
});
const MODALITY: [string, string] = ["0x08", "0x60"];
const DESCRIPTION: [string, string] = ["0x08", "0x103e"];
const RULES_A = [rule("SCAN", MODALITY, "^MR$")];
const RULES_B = [rule("SCAN", MODALITY, "^CT$"), rule("T1", DESCRIPTION, "^t1")];

const study = generateStudy({
  outDir: mkdtempSync(path.join(tmpdir(), "fiona-reclassify-gen-")),
  seed: "reclassify",
  modality: "MR",
  series: [{ description: "t1_mprage_sag" }, { description: "t2_tse_tra" }],
  instancesPerSeries: 3,
  fileSize: 2048,
});
const [t1, t2] = study.seriesInstanceUids as [string, string];

let cfg: FionaConfig;
let paths: SitePaths;
let rulesFile: string;
let configFile: string;
let redis: Redis;
let workers: WorkersHandle;
const captured = capturedLogger();

const types = (series: string) =>
  (JSON.parse(readFileSync(paths.seriesJson(study.studyInstanceUid, series), "utf8")) as SeriesSummary)
    .ClassifyType;

async function jobs<N extends "study-arrived" | "arrival" | "reclassify">(name: N) {
  const q = createQueue(name, redis, cfg.redis.prefix);
  const list = await q.getJobs(["completed", "failed", "active", "waiting", "delayed"]);
  await q.close();
  return list;
}

const fiona = async (...args: string[]) =>
  (await run(process.execPath, ["bin/fiona.js", "--config", configFile, ...args])).stdout;

/** Run `fiona reclassify …` and wait for the n-th reclassify job to finish; returns its result. */
async function reclassify(n: number, ...args: string[]): Promise<ReclassifyResult> {
  expect(await fiona("reclassify", ...args)).toContain("1 reclassify job(s) queued");
  const done = await waitFor(async () => {
    const list = (await jobs(QUEUES.reclassify)).filter((j) => j.finishedOn);
    return list.length >= n ? list : undefined;
  }, "reclassify job");
  const job = done.sort((a, b) => b.finishedOn! - a.finishedOn!)[0]!;
  expect(job.failedReason).toBeUndefined();
  return job.returnvalue as ReclassifyResult;
}

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "fiona-reclassify-"));
  rulesFile = path.join(dir, "rules.json");
  writeFileSync(rulesFile, JSON.stringify(RULES_A));
  cfg = testConfig({ arrival: { quietSeconds: 1 }, classify: { rulesFile } });
  configFile = path.join(dir, "fiona.config.json");
  writeFileSync(configFile, JSON.stringify(cfg));
  paths = new SitePaths(cfg.dataDir);
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, captured.log, [
    QUEUES.ingest,
    QUEUES.arrival,
    QUEUES.studyArrived,
    QUEUES.reclassify,
  ]);
  await receiveLocally(cfg, redis, study);
  await waitFor(async () => (await jobs(QUEUES.studyArrived)).find((j) => j.finishedOn), "first arrival");
}, 60_000);

afterAll(async () => {
  await workers?.close();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

describe("reclassify", () => {
  it("leaves a study whose types did not change alone: no new arrival", async () => {
    expect(types(t1)).toEqual(["SCAN"]);
    const arrivals = (await jobs(QUEUES.arrival)).length;
    const r = await reclassify(1, study.studyInstanceUid);
    expect(r).toEqual({ series: 2, changed: [], rearrived: false });
    expect((await jobs(QUEUES.arrival)).length).toBe(arrivals);
    expect((await jobs(QUEUES.studyArrived)).length).toBe(1);
  });

  it("writes the new rules' types and lets the study arrive again", async () => {
    writeFileSync(rulesFile, JSON.stringify(RULES_B));
    await waitFor(() => captured.text().includes("classification rules reloaded"), "rules reload");
    const r = await reclassify(2, "--all-since", new Date().toISOString().slice(0, 10));
    expect(r.rearrived).toBe(true);
    expect(r.changed).toEqual(
      [
        { seriesInstanceUid: t1, before: ["SCAN"], after: ["T1"] },
        { seriesInstanceUid: t2, before: ["SCAN"], after: [] },
      ].sort((a, b) => a.seriesInstanceUid.localeCompare(b.seriesInstanceUid)),
    );
    expect(types(t1)).toEqual(["T1"]);
    expect(types(t2)).toEqual([]);

    const second = await waitFor(
      async () => (await jobs(QUEUES.studyArrived)).find((j) => j.data.arrival === 2 && j.finishedOn),
      "second arrival",
    );
    expect(second.data).toMatchObject({
      studyInstanceUid: study.studyInstanceUid,
      seriesCount: 2,
      fileCount: 6,
    });
    const entry = await new StudyRegistry(redis, cfg.redis.prefix).get(study.studyInstanceUid);
    expect(entry?.series.find((s) => s.seriesInstanceUid === t1)?.classifyType).toEqual(["T1"]);
    // The command is in the audit log, as the operating-system user.
    const audited = JSON.parse(await fiona("audit", "--json")) as Array<Record<string, unknown>>;
    expect(audited).toContainEqual(
      expect.objectContaining({
        action: "reclassify",
        via: "cli",
        user: userInfo().username,
        study: study.studyInstanceUid,
      }),
    );
    // Nothing identifying in what was logged.
    expect(captured.text()).not.toContain(study.phi.patientName);
    expect(captured.text()).not.toContain(study.phi.patientId);
  });

  it("queues nothing for a day after the last images, and rejects bad or unknown UIDs", async () => {
    expect(await fiona("reclassify", "--all-since", "2999-01-01")).toContain("0 reclassify job(s) queued");
    await expect(fiona("reclassify", "../etc")).rejects.toThrow(/not a valid StudyInstanceUID/);
    await expect(fiona("reclassify", "1.2.3.4")).rejects.toThrow(/no study 1.2.3.4 in raw/);
  });
});
