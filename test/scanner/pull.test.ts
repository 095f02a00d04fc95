/**
 * Scanner pulls end to end: dcmqrscp (dcmtk) plays the scanner (C-FIND, C-MOVE to FIONA), FIONA runs
 * its receiver, workers and MPPS SCP. One of three series arrives by storescu; the MPPS N-CREATE starts
 * a pull that C-MOVEs the missing two, the N-SET COMPLETED ends it. Then `fiona pull` on demand, and
 * the give-up path.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { enqueuePull } from "../../src/scanner/enqueue.js";
import { PullRefusedError, moveSeries, scannerDestination } from "../../src/scanner/pull.js";
import { startMppsScp, type MppsScpHandle } from "../../src/scanner/mpps-scp.js";
import { MppsStore } from "../../src/scanner/mpps-store.js";
import { MPPS_STATUS } from "../../src/scanner/mpps-step.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startDcmqrscp, type Dcmqrscp } from "../support/peers.js";
import { createDataset, nCreate, nSet } from "./mpps-client.js";

const run = promisify(execFile);
const TCP = { env: { ...process.env, TCP_NODELAY: "1" } };
const gen = mkdtempSync(path.join(tmpdir(), "fiona-pull-gen-"));
const study = (seed: string, outDir: string) =>
  generateStudy({
    outDir: path.join(gen, outDir),
    seed,
    modality: "MR",
    series: 3,
    instancesPerSeries: 3,
    fileSize: 2048,
  });
const mppsStudy = study("pull-mpps", "a");
const manualStudy = study("pull-manual", "b");

let scanner: Dcmqrscp;
let cfg: FionaConfig;
let receiver: ReceiverHandle;
let workers: WorkersHandle;
let mpps: MppsScpHandle;
let redis: Redis;
let store: MppsStore;
const log = createLogger("silent");

async function storeSeries(port: number, aet: string, files: string[]) {
  await run("storescu", ["-aec", aet, "127.0.0.1", String(port), ...files], TCP);
}

const arrived = (s: GeneratedStudy) =>
  s.series.map((series) => {
    try {
      return readdirSync(
        new SitePaths(cfg.dataDir).rawSeriesDir(s.studyInstanceUid, series.seriesInstanceUid),
      ).length;
    } catch {
      return 0;
    }
  });

beforeAll(async () => {
  const fionaPort = await freePort();
  scanner = await startDcmqrscp(mkdtempSync(path.join(tmpdir(), "fiona-pull-qr-")), {
    aeTitle: "MRSCANNER",
    hosts: [`fiona = (FIONA, 127.0.0.1, ${fionaPort})`],
  });
  for (const s of [mppsStudy, manualStudy])
    await run("storescu", ["-aec", "MRSCANNER", "+sd", "+r", "127.0.0.1", String(scanner.port), s.dir], TCP);
  cfg = testConfig({
    dicomPort: fionaPort,
    dicomHost: "127.0.0.1",
    arrival: { quietSeconds: 1 },
    scanners: {
      list: [{ name: "MR1", aeTitle: "MRSCANNER", host: "127.0.0.1", port: scanner.port }],
      recheckSeconds: 0.5,
      moveAgainSeconds: 5,
    },
  });
  writeFileSync(path.join(cfg.dataDir, "fiona.config.json"), JSON.stringify(cfg));
  workers = await startWorkers(cfg, log, [QUEUES.ingest, QUEUES.arrival, QUEUES.scannerPull]);
  receiver = await startReceiver(cfg, { log });
  mpps = await startMppsScp(cfg, { port: 0, log });
  redis = new Redis(cfg.redis.url);
  store = new MppsStore(redis, cfg.redis.prefix, cfg.scanners.giveUpHours);
}, 60_000);

afterAll(async () => {
  await mpps?.close();
  await receiver?.close();
  await workers?.close();
  await scanner?.stop();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

describe("scanner pull (dcmqrscp as the scanner)", () => {
  it("MPPS N-CREATE pulls the missing series; N-SET COMPLETED finishes the pull", async () => {
    await storeSeries(receiver.port, "FIONA", mppsStudy.series[0]!.files);
    await waitFor(() => arrived(mppsStudy)[0] === 3, "the first series in raw/");
    const peer = { port: mpps.port, callingAe: "MRSCANNER" };
    const sop = "1.2.826.0.1.3680043.10.2.1";
    const phi = {
      patientName: "PULLMARK^NAME",
      patientId: "PULLMARK_PID",
      birthDate: "19030405",
      accession: "PULLMARK_ACC",
    };
    expect((await nCreate(peer, sop, createDataset(mppsStudy.studyInstanceUid, phi))).status).toBe(
      MPPS_STATUS.Success,
    );

    await waitFor(() => arrived(mppsStudy).every((n) => n === 3), "every series in raw/", 30_000);
    const queue = createQueue(QUEUES.scannerPull, redis, cfg.redis.prefix);
    const [job] = await queue.getJobs(["delayed", "active", "waiting"]);
    expect(job?.data.studyInstanceUid).toBe(mppsStudy.studyInstanceUid);
    // Still waiting for the step to end: no outcome yet.
    expect(await store.outcome(mppsStudy.studyInstanceUid)).toBeUndefined();
    // The series that arrived by storescu was counted at IMAGE level, not moved again.
    // The pass records its moves in the job data after the images may already be in raw/.
    const moved = await waitFor(async () => {
      const keys = Object.keys((await queue.getJob(job!.id!))?.data.moves ?? {});
      return keys.length >= 2 && keys;
    }, "the moves recorded in the job");
    expect(moved.sort()).toEqual(
      mppsStudy.series
        .slice(1)
        .map((s) => s.seriesInstanceUid)
        .sort(),
    );

    const series = mppsStudy.series.map((s) => ({ seriesInstanceUid: s.seriesInstanceUid, images: 3 }));
    expect((await nSet(peer, sop, "COMPLETED", series)).status).toBe(MPPS_STATUS.Success);
    const outcome = await waitFor(
      () => store.outcome(mppsStudy.studyInstanceUid),
      "the pull outcome",
      20_000,
    );
    expect(outcome).toMatchObject({ outcome: "complete", trigger: "mpps", scanner: "MR1" });
    expect(outcome.series.every((s) => s.complete && s.arrived === 3)).toBe(true);
    expect(await (await queue.getJob(job!.id!))!.getState()).toBe("completed");
    await queue.close();

    const step = JSON.stringify(await store.forStudy(mppsStudy.studyInstanceUid));
    expect(step).toContain("COMPLETED");
    for (const marker of Object.values(phi)) expect(step).not.toContain(marker);
  }, 60_000);

  it("fiona pull <StudyInstanceUID> --wait pulls a study on demand and prints the outcome", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        "bin/fiona.js",
        "--config",
        path.join(cfg.dataDir, "fiona.config.json"),
        "pull",
        manualStudy.studyInstanceUid,
        "--wait",
      ],
      { timeout: 60_000 },
    );
    expect(stdout).toMatch(/scanner pull \S+ queued/);
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as { outcome: string; series: unknown[] };
    expect(result).toMatchObject({ outcome: "complete" });
    expect(result.series).toHaveLength(3);
    expect(arrived(manualStudy)).toEqual([3, 3, 3]);
  }, 60_000);

  it("rejects a pull of an invalid UID or an unknown scanner", async () => {
    const config = path.join(cfg.dataDir, "fiona.config.json");
    await expect(
      run(process.execPath, ["bin/fiona.js", "--config", config, "pull", "../etc"]),
    ).rejects.toThrow(/not a valid StudyInstanceUID/);
    await expect(
      run(process.execPath, ["bin/fiona.js", "--config", config, "pull", "1.2.3", "--scanner", "CT9"]),
    ).rejects.toThrow(/no scanner "CT9"/);
  }, 30_000);

  it("a C-MOVE to a destination the scanner does not know is refused with a clear error", async () => {
    const other = { ...cfg, aeTitle: "NOTKNOWN" };
    const dest = scannerDestination(other, cfg.scanners.list[0]!);
    const series = manualStudy.series[0]!.seriesInstanceUid;
    const refused = moveSeries(other, dest, manualStudy.studyInstanceUid, series, Date.now);
    await expect(refused).rejects.toBeInstanceOf(PullRefusedError);
    await expect(refused).rejects.toThrow(/does not know the move destination NOTKNOWN/);
  }, 30_000);

  it("gives up when the study is not complete after giveUpHours, and records it", async () => {
    const absent = "1.2.826.0.1.3680043.10.2.404";
    const queue = createQueue(QUEUES.scannerPull, redis, cfg.redis.prefix);
    // Started 25 hours ago: the first pass finds nothing on the scanner and gives up.
    const jobId = await enqueuePull(
      queue,
      { studyInstanceUid: absent, scanner: "MR1", trigger: "manual" },
      new Date(Date.now() - 25 * 3600_000),
    );
    const job = await waitFor(async () => {
      const j = await queue.getJob(jobId);
      return (await j?.getState()) === "failed" ? j : undefined;
    }, "the pull to fail");
    expect(job.failedReason).toMatch(/gave up after 24 h: the scanner lists no series/);
    expect(job.attemptsMade).toBe(1);
    expect(await store.outcome(absent)).toMatchObject({ outcome: "gave-up", series: [] });
    await queue.close();
  }, 30_000);
});
