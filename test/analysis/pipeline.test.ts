import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { FlowProducer, type Job } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AnalysisResult } from "../../src/analysis/run.js";
import {
  enqueueAnalysis,
  requestCancel,
  triggerAnalyses,
  type AnalysisQueue,
} from "../../src/analysis/trigger.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { actOnQuarantined } from "../../src/quarantine/actions.js";
import { QuarantineStore } from "../../src/quarantine/store.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { AuditLog } from "../../src/registry/audit.js";
import { createRoutingDeps } from "../../src/routing/deps.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startTransfer } from "../../src/transfer/start.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startOrthanc, type Orthanc } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";
import { startFionaSim, type FionaSim } from "../support/redcap-sim.js";

const ALGO = fileURLToPath(new URL("./fixtures/algo.mjs", import.meta.url));
const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-analysis-${tag}-`));

let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let queue: AnalysisQueue;
let orthanc: Orthanc;
let rc: FionaSim;
let study: GeneratedStudy;

const algoJob = (name: string, mode: string, extra: Record<string, unknown> = {}) => ({
  name,
  runtime: "process" as const,
  command: [process.execPath, ALGO, "{input}", "{output}", "{descr}"],
  env: { ALGO_MODE: mode },
  options: { threshold: 0.5 },
  ...extra,
});

async function settled(id: string): Promise<Job> {
  return waitFor(
    async () => {
      const state = await queue.getJobState(id);
      // Read the job only once it has settled: a copy fetched while active lacks its result.
      return state === "completed" || state === "failed" ? await queue.getJob(id) : undefined;
    },
    `analysis job ${id}`,
    60_000,
    100,
  );
}

interface OrthancSeries {
  MainDicomTags: Record<string, string>;
  Instances: string[];
}

async function orthancSeries(): Promise<OrthancSeries[]> {
  const ids = (await (await fetch(`${orthanc.url}/series`)).json()) as string[];
  return Promise.all(
    ids.map(async (i) => (await (await fetch(`${orthanc.url}/series/${i}`)).json()) as OrthancSeries),
  );
}

const run = (job: string, participant = "PROJ_0001") =>
  enqueueAnalysis(cfg, queue, {
    job,
    studyInstanceUid: study.studyInstanceUid,
    project: "PROJ",
    participant,
    event: "baseline_arm_1",
  });

beforeAll(async () => {
  orthanc = await startOrthanc(tmp("orthanc"));
  rc = await startFionaSim({ perProject: ["PROJ"] });
  cfg = testConfig({
    secret: "test-secret-0123456789",
    arrival: { quietSeconds: 1 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        events: ["baseline_arm_1"],
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: orthanc.dicomPort },
      },
    ],
    redcap: {
      url: rc.sim.url,
      projects: {
        incoming: { token: rc.tokens.incoming },
        perProject: { PROJ: { token: rc.tokens.perProject.PROJ! } },
      },
    },
    analysis: {
      runtime: "process",
      jobs: [
        algoJob("derive", "ok", {
          select: { tags: [{ tag: "SeriesDescription", op: "contains", value: "second" }] },
        }),
        algoJob("foreign", "foreign-study"),
        algoJob("reuse", "reuse-sop"),
        algoJob("slow", "sleep", { limits: { timeoutSeconds: 1 } }),
        algoJob("cancel-me", "sleep"),
        algoJob("crash", "fail"),
        algoJob("nothing", "ok", { select: { classifyTypes: ["no-such-type"] } }),
        algoJob("on-arrival", "ok", { trigger: { projects: ["PROJ"] }, results: { redcap: false } }),
      ],
    },
  });
  redis = new Redis(cfg.redis.url);
  // Only the queues this test needs (the REDCap stages would push arrivals to Incoming).
  workers = await startWorkers(cfg, log, [QUEUES.ingest, QUEUES.arrival, QUEUES.analysis]);
  queue = createQueue(QUEUES.analysis, redis, cfg.redis.prefix);
  study = generateStudy({
    outDir: tmp("gen"),
    seed: "analysis-1",
    series: [{ description: "first series" }, { description: "second series" }],
    instancesPerSeries: 3,
    fileSize: 4096,
  });
  await receiveLocally(cfg, redis, study);
  const raw = new SitePaths(cfg.dataDir);
  await waitFor(
    () =>
      study.seriesInstanceUids.every((s) => existsSync(raw.seriesJson(study.studyInstanceUid, s))) &&
      study.seriesInstanceUids.every(
        (s) => readdirSync(raw.rawSeriesDir(study.studyInstanceUid, s)).length === 3,
      ),
    "ingest",
  );
}, 60_000);

afterAll(async () => {
  await workers?.close();
  await queue?.close();
  redis?.disconnect();
  await orthanc?.stop();
  await rc?.sim.close();
  if (cfg) await cleanup(cfg);
});

describe("analysis jobs with the process runtime", () => {
  it("runs the algorithm on pseudonymized input; results reach Orthanc and REDCap", async () => {
    const job = await settled(await run("derive"));
    expect(job.failedReason).toBeUndefined();
    const r = job.returnvalue as AnalysisResult;
    expect(r).toMatchObject({
      job: "derive",
      runtime: "process",
      inputSeries: 1,
      inputFiles: 3,
      exitCode: 0,
      sent: 2,
      notDicom: 1,
    });
    expect(r.outputSeries).toHaveLength(1);

    // The job folder: descr.json with pseudonymized values, input/ without patient data.
    const descr = JSON.parse(readFileSync(path.join(r.jobDir, "descr.json"), "utf8")) as Array<
      Record<string, unknown>
    >;
    expect(descr).toHaveLength(1);
    expect(descr[0]).toMatchObject({
      PatientID: "PROJ_0001",
      SeriesDescription: "second series",
      NumFiles: 3,
      ReferringPhysician: "baseline_arm_1",
    });
    expect(descr[0]!.StudyInstanceUID).not.toBe(study.studyInstanceUid);
    const inputFiles = readdirSync(path.join(r.jobDir, "input", "series-001"));
    expect(inputFiles).toHaveLength(3);
    for (const f of inputFiles) {
      const bytes = readFileSync(path.join(r.jobDir, "input", "series-001", f));
      for (const marker of [study.phi.patientName, study.phi.patientId, study.phi.accessionNumber])
        expect(bytes.includes(Buffer.from(marker)), `${marker} in the input`).toBe(false);
    }

    // stdout and stderr are in the job log and in log/.
    const { logs } = await queue.getJobLogs(job.id!);
    expect(
      logs.some((l) => l.includes('[stdout] algorithm started, mode ok, options {"threshold":0.5}')),
    ).toBe(true);
    expect(logs).toContain("[stderr] a line on stderr");
    expect(readFileSync(path.join(r.jobDir, "log", "stderr.log"), "utf8")).toContain("a line on stderr");

    // The derived series is in Orthanc, in the pseudonymized study.
    const series = await orthancSeries();
    const derived = series.find((s) => s.MainDicomTags.SeriesInstanceUID === r.outputSeries[0]);
    expect(derived?.MainDicomTags.SeriesDescription).toBe("DERIVED by algo");
    expect(derived?.Instances).toHaveLength(2);
    const studies = (await await fetch(`${orthanc.url}/tools/find`, {
      method: "POST",
      body: JSON.stringify({ Level: "Study", Query: { StudyInstanceUID: descr[0]!.StudyInstanceUID } }),
    }).then((x) => x.json())) as string[];
    expect(studies).toHaveLength(1);

    // output.json went to the project's REDCap.
    expect(r.redcap).toMatchObject({ written: true, records: 1 });
    const rows = rc.sim.project("project:PROJ").exportAll();
    expect(rows).toContainEqual(
      expect.objectContaining({
        record_id: "PROJ_0001",
        redcap_event_name: "baseline_arm_1",
        last_name: "files=3",
      }),
    );
  }, 60_000);

  it("rejects output in a foreign study and sends nothing", async () => {
    const before = (await orthancSeries()).length;
    const job = await settled(await run("foreign"));
    expect(job.failedReason).toMatch(
      /output rejected, nothing sent .*StudyInstanceUID 1\.2\.3\.4\.5\.6\.7 is not the StudyInstanceUID of the input/,
    );
    expect((await orthancSeries()).length).toBe(before);

    // The rejection is kept in the analysis stage's quarantine, and a retry runs the job again.
    const store = new QuarantineStore(redis, cfg.redis.prefix);
    const record = await waitFor(
      async () => (await store.list({ stage: "analysis" })).find((r) => r.job?.id === job.id),
      "the analysis quarantine record",
    );
    expect(record.ids).toMatchObject({ studyInstanceUid: study.studyInstanceUid, project: "PROJ" });
    expect(record.reason).toMatch(/output rejected, nothing sent/);
    const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
    const deps = {
      ...createRoutingDeps(
        {
          cfg,
          paths: new SitePaths(cfg.dataDir),
          flow,
          transfers: new TransferRegistry(redis, cfg.redis.prefix),
          log,
        },
        redis,
      ),
      store,
      audit: new AuditLog(redis, cfg.redis.prefix),
    };
    expect(await actOnQuarantined(deps, "retry", record.id, { user: "test", via: "cli" })).toEqual({
      kind: "job",
      queue: "analysis",
      jobId: job.id,
    });
    // Rejected again: the same job fails again and is quarantined anew.
    const again = await waitFor(
      async () =>
        (await store.list({ stage: "analysis" })).find((r) => r.job?.id === job.id && r.id === record.id),
      "the retried job back in quarantine",
      60_000,
    );
    expect(again.reason).toBe(record.reason);
    await flow.close();
  }, 120_000);

  it("rejects output that reuses input SOPInstanceUIDs", async () => {
    const job = await settled(await run("reuse"));
    expect(job.failedReason).toMatch(
      /output rejected.*SOPInstanceUID .* is an input instance \(results need new SOPInstanceUIDs\)/,
    );
  }, 60_000);

  it("kills a job over its time limit and fails it clearly", async () => {
    const t0 = Date.now();
    const job = await settled(await run("slow"));
    expect(job.failedReason).toBe("analysis job slow exceeded its time limit of 1 s and was killed");
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 60_000);

  it("cancels a running job on request (job data cancel: true, as from Bull Board)", async () => {
    const id = await run("cancel-me");
    await waitFor(async () => (await queue.getJob(id))?.getState().then((s) => s === "active"), "active");
    await waitFor(
      async () => (await queue.getJobLogs(id)).logs.some((l) => l.includes("sleeping")),
      "algorithm running",
    );
    expect(await requestCancel(queue, id)).toBe(true);
    const job = await settled(id);
    expect(job.failedReason).toBe("analysis job cancel-me was cancelled");
  }, 60_000);

  it("fails on a non-zero exit and when no series matches", async () => {
    expect((await settled(await run("crash"))).failedReason).toMatch(
      /analysis job crash failed: exit code 3/,
    );
    expect((await settled(await run("nothing"))).failedReason).toMatch(
      /no series of this study matches its selection/,
    );
  }, 60_000);

  it("is queued by a project's arrivals, with the study's pseudonym", async () => {
    const transfers = new TransferRegistry(redis, cfg.redis.prefix);
    const flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
    try {
      await startTransfer(
        { cfg, paths: new SitePaths(cfg.dataDir), flow, transfers },
        {
          studyInstanceUid: study.studyInstanceUid,
          project: "PROJ",
          participant: "PROJ_0002",
          requestedBy: "test",
        },
      );
    } finally {
      await flow.close();
    }
    const ids = await triggerAnalyses(
      { cfg, paths: new SitePaths(cfg.dataDir), transfers, log, queue },
      study.studyInstanceUid,
      6,
    );
    expect(ids).toHaveLength(1);
    const job = await settled(ids[0]!);
    expect(job.data).toMatchObject({ job: "on-arrival", participant: "PROJ_0002", trigger: "arrival" });
    expect(job.failedReason).toBeUndefined();
    expect((job.returnvalue as AnalysisResult).redcap).toMatchObject({
      written: false,
      reason: "results.redcap is off for this job",
    });
    // The same arrival does not queue it again.
    expect(
      await triggerAnalyses(
        { cfg, paths: new SitePaths(cfg.dataDir), transfers, log, queue },
        study.studyInstanceUid,
        6,
      ),
    ).toEqual(ids);
  }, 60_000);

  it("refuses unknown jobs and bad pseudonyms when queuing", async () => {
    await expect(run("no-such-job")).rejects.toThrow(/analysis job no-such-job is not configured/);
    await expect(run("derive", "someone")).rejects.toThrow();
  });
});

describe("called AE title trigger", () => {
  it("queues a job for a study sent to its AE title and assigned to a project", async () => {
    const def = cfg.analysis.jobs.find((j) => j.name === "derive")!;
    const byAe = {
      ...cfg,
      analysis: { ...cfg.analysis, jobs: [{ ...def, trigger: { calledAe: "FIONA", projects: [] } }] },
    };
    const deps = {
      cfg: byAe,
      paths: new SitePaths(cfg.dataDir),
      transfers: new TransferRegistry(redis, cfg.redis.prefix),
      log,
      queue,
    };
    const ids = await triggerAnalyses(deps, study.studyInstanceUid, 6);
    expect(ids).toHaveLength(1);
    const job = await settled(ids[0]!);
    expect(job.data).toMatchObject({ job: "derive", trigger: "called-ae", participant: "PROJ_0002" });
    expect(job.failedReason).toBeUndefined();
    const other = {
      ...byAe,
      analysis: { ...byAe.analysis, jobs: [{ ...def, trigger: { calledAe: "ELSEWHERE", projects: [] } }] },
    };
    expect(await triggerAnalyses({ ...deps, cfg: other }, study.studyInstanceUid, 6)).toEqual([]);
  }, 60_000);
});
