/**
 * An ingest that fails on the participants/<PatientID> link: the error names that path, and neither
 * the job's failure in Redis, nor its quarantine record, nor the logs may carry the patient ID.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { SitePaths, redactIdentifyingPaths } from "../../src/paths.js";
import { QuarantineStore } from "../../src/quarantine/store.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { startWorkers } from "../../src/roles/workers.js";
import { captureLogger } from "../receiver/helpers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";

const cfg = testConfig({});
const redis = new Redis(cfg.redis.url);

afterAll(async () => {
  redis.disconnect();
  await cleanup(cfg);
});

describe("errors that quote a participants/<PatientID> path", () => {
  it("are redacted", () => {
    expect(redactIdentifyingPaths("EEXIST: '/d/site/participants/DOE^JOHN 123/2020_1' -> x")).toBe(
      "EEXIST: '/d/site/participants/<redacted>/2020_1' -> x",
    );
  });

  it("leave the patient ID out of the failed job, its quarantine record and the logs", async () => {
    const study = generateStudy({
      outDir: mkdtempSync(path.join(tmpdir(), "fiona-phi-err-")),
      seed: "phi-err",
    });
    const paths = new SitePaths(cfg.dataDir);
    const file = path.join(paths.archiveStudyDir(study.studyInstanceUid), "MR.1.dcm");
    mkdirSync(path.dirname(file), { recursive: true });
    copyFileSync(study.files[0]!, file);
    // A file where the patient's folder should be: linking the study under it fails with its path.
    mkdirSync(paths.participants, { recursive: true });
    writeFileSync(path.join(paths.participants, study.phi.patientId), "in the way");

    const { logger, lines } = captureLogger();
    const workers = await startWorkers(cfg, logger, [QUEUES.ingest]);
    const queue = createQueue(QUEUES.ingest, redis, cfg.redis.prefix);
    try {
      const job = await queue.add(
        QUEUES.ingest,
        {
          path: file,
          callingAe: "S",
          calledAe: "FIONA",
          peer: "127.0.0.1",
          receivedAt: new Date().toISOString(),
        },
        { attempts: 1 },
      );
      const failed = await waitFor(
        async () =>
          (await queue.getJobState(job.id!)) === "failed" ? await queue.getJob(job.id!) : undefined,
        "the ingest job to fail",
      );
      expect(failed.failedReason).toContain("participants/<redacted>");
      const record = await waitFor(
        async () => (await new QuarantineStore(redis, cfg.redis.prefix).list({ stage: "ingest" }))[0],
        "its quarantine record",
      );
      const seen = [
        failed.failedReason,
        JSON.stringify(failed.stacktrace),
        JSON.stringify(record),
        JSON.stringify(lines),
      ];
      for (const text of seen) expect(text).not.toContain(study.phi.patientId);
    } finally {
      await queue.close();
      await workers.close();
    }
  }, 30_000);
});
