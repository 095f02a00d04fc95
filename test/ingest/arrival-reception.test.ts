/**
 * Arrival follows reception: a study is announced once nothing was received for the quiet time and
 * none of its ingest jobs is left, so an ingest worker SIGKILLed mid-study delays the announcement
 * instead of splitting it. Real receiver (in this process), storescu, `fiona worker` processes.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES, arrivalDedupId, createQueue, type TypedQueue } from "../../src/queues/index.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";

let cfg: FionaConfig;
let configFile: string;
let redis: Redis;
let receiver: ReceiverHandle;
let ingest: TypedQueue<"ingest">;
let arrival: TypedQueue<"arrival">;
let studyArrived: TypedQueue<"study-arrived">;
const workers = new Set<ChildProcess>();

function startWorker(queues: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ["bin/fiona.js", "--config", configFile, "worker", "--queues", queues],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, FIONA_LOG_LEVEL: "error" } },
  );
  workers.add(child);
  child.once("exit", () => workers.delete(child));
  return child;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
}

/** Wait until a worker process listens on `queue` (BullMQ's worker list). */
const workerUp = (queue: TypedQueue<"ingest"> | TypedQueue<"arrival">) =>
  waitFor(async () => (await queue.getWorkersCount()) > 0, `a worker on ${queue.name}`, 30_000);

function send(dir: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(
      "storescu",
      ["-aec", "FIONA", "+sd", "+r", "127.0.0.1", String(receiver.port), dir],
      { env: { ...process.env, TCP_NODELAY: "1" } },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}

const seriesDir = (study: GeneratedStudy, i: number) => path.dirname(study.series[i]!.files[0]!);

function ingested(study: GeneratedStudy): number {
  const paths = new SitePaths(cfg.dataDir);
  return study.seriesInstanceUids.reduce((n, s) => {
    try {
      return n + readdirSync(paths.rawSeriesDir(study.studyInstanceUid, s)).length;
    } catch {
      return n;
    }
  }, 0);
}

async function arrivalsOf(study: GeneratedStudy) {
  const jobs = await studyArrived.getJobs(["waiting", "active", "delayed", "completed", "failed"]);
  return jobs.filter((j) => j.data.studyInstanceUid === study.studyInstanceUid).map((j) => j.data);
}

/**
 * Kill the ingest worker once `atLeast` files are ingested and the study's arrival is armed, before
 * all `received` are; the ids of the jobs it held.
 */
async function killMidStudy(worker: ChildProcess, study: GeneratedStudy, atLeast: number, received: number) {
  await waitFor(
    async () =>
      (ingested(study) >= atLeast &&
        (await arrival.getDeduplicationJobId(arrivalDedupId(study.studyInstanceUid))) !== null) ||
      undefined,
    "first files ingested and the arrival armed",
    30_000,
    5,
  );
  await stop(worker, "SIGKILL");
  const killedAt = Date.now();
  const held = (await ingest.getActive()).map((j) => j.id!);
  expect(ingested(study)).toBeLessThan(received);
  return { killedAt, held };
}

/** Resolves with the time at which every one of the jobs was finished (completed). */
async function allFinished(ids: string[]): Promise<number> {
  return waitFor(
    async () => {
      const jobs = await Promise.all(ids.map((id) => ingest.getJob(id)));
      return jobs.every((j) => j?.finishedOn !== undefined) ? Date.now() : undefined;
    },
    "the killed worker's jobs to finish",
    60_000,
    50,
  );
}

async function exactlyOneArrival(study: GeneratedStudy) {
  const [first] = await waitFor(
    async () => {
      const a = await arrivalsOf(study);
      return a.length > 0 ? a : undefined;
    },
    "study-arrived",
    30_000,
  );
  // Another quiet time and a few polls later there is still just the one.
  await new Promise((r) => setTimeout(r, cfg.arrival.quietSeconds * 1000 + 1500));
  expect(await arrivalsOf(study)).toHaveLength(1);
  return first!;
}

beforeAll(async () => {
  // Ingest at 16 jobs at once, so the kill reliably finds the backlog half done.
  cfg = testConfig({ dicomHost: "127.0.0.1", arrival: { quietSeconds: 1 }, ingest: { concurrency: 16 } });
  configFile = path.join(cfg.dataDir, "fiona.config.json");
  writeFileSync(configFile, JSON.stringify({ ...cfg, log: { level: "error" } }));
  redis = new Redis(cfg.redis.url);
  ingest = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
  arrival = createQueue(QUEUES.arrival, redis, cfg.redis.prefix);
  studyArrived = createQueue(QUEUES.studyArrived, redis, cfg.redis.prefix);
  receiver = await startReceiver(cfg, { port: 0, host: "127.0.0.1", log: createLogger("silent") });
});

afterAll(async () => {
  await Promise.all([...workers].map((w) => stop(w, "SIGKILL")));
  await receiver?.close();
  await Promise.all([ingest?.close(), arrival?.close(), studyArrived?.close()]);
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

describe("arrival after an ingest worker is killed mid-study", () => {
  it("waits while received images are not ingested, then announces the whole study once", async () => {
    const study = generateStudy({
      outDir: path.join(cfg.dataDir, "gen-1"),
      seed: "arrival-reception-1",
      series: 2,
      instancesPerSeries: 200,
      fileSize: 2048,
    });
    // The first series is received with no worker running; a worker starts on the backlog and dies.
    await send(seriesDir(study, 0));
    const first = startWorker("ingest,arrival,study-arrived");
    const { held } = await killMidStudy(first, study, 10, 200);
    expect(held.length).toBeGreaterThan(0);

    // Arrival keeps running, ingest does not; the second series arrives meanwhile.
    const arrivalOnly = startWorker("arrival,study-arrived");
    await workerUp(arrival);
    await send(seriesDir(study, 1));
    const sentAt = Date.now();
    await waitFor(
      async () => {
        const done = await arrival.getCompleted();
        return done.find(
          (j) =>
            (j.finishedOn ?? 0) > sentAt &&
            (j.returnvalue as { reason?: string } | undefined)?.reason === "ingest pending",
        );
      },
      "arrival to look at the quiet study and wait for its ingest",
      40_000,
      100,
    );
    expect(await arrivalsOf(study)).toHaveLength(0);
    expect(ingested(study)).toBeLessThan(study.files.length);

    const restartedAt = Date.now();
    const replacement = startWorker("ingest");
    const backAt = await allFinished(held);
    console.log(
      `jobs held by the killed worker finished ${backAt - restartedAt} ms after a new ingest worker started`,
    );

    const announced = await exactlyOneArrival(study);
    expect(announced).toMatchObject({ arrival: 1, seriesCount: 2, fileCount: 400 });
    await Promise.all([stop(arrivalOnly, "SIGTERM"), stop(replacement, "SIGTERM")]);
  }, 90_000);

  it("gets the jobs of a SIGKILLed ingest worker back within seconds and still announces once", async () => {
    const study = generateStudy({
      outDir: path.join(cfg.dataDir, "gen-2"),
      seed: "arrival-reception-2",
      series: 1,
      instancesPerSeries: 300,
      fileSize: 2048,
    });
    await send(seriesDir(study, 0));
    const first = startWorker("ingest,arrival,study-arrived");
    const { killedAt, held } = await killMidStudy(first, study, 10, 300);
    expect(held.length).toBeGreaterThan(0);
    startWorker("ingest,arrival,study-arrived");
    const backAt = await allFinished(held);
    console.log(`jobs held by the killed worker finished ${backAt - killedAt} ms after the kill`);
    // Lock 10 s + stalled check 5 s; BullMQ's defaults (30 s + 30 s) take 30-60 s.
    expect(backAt - killedAt).toBeLessThan(20_000);

    const announced = await exactlyOneArrival(study);
    expect(announced).toMatchObject({ arrival: 1, seriesCount: 1, fileCount: 300 });
  }, 60_000);
});
