import { promises as fs } from "node:fs";
import path from "node:path";
import { UnrecoverableError, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { PermanentSendError, RetryableSendError, sendFiles } from "../dimse/index.js";
import type { Logger } from "../log.js";
import { SitePaths } from "../paths.js";
import type { SeriesTransferJob } from "../queues/index.js";
import { registryKeys } from "../registry/keys.js";
import { withLock } from "../registry/lock.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { storeDestinationFor, type DeidentifyResult, type SendResult } from "../transfer/stage.js";
import type { Stage } from "./stage.js";

export interface SendDeps {
  cfg: FionaConfig;
  redis: Redis;
  prefix: string;
  transfers: TransferRegistry;
  log: Logger;
}

/** A series written pseudonymized straight into the outbox (see startPreparedTransfer). */
function preparedSeries(cfg: FionaConfig, d: SeriesTransferJob): DeidentifyResult {
  const outDir = new SitePaths(cfg.dataDir).outboxSeries(d.requestId, d.seriesInstanceUid);
  return { outDir, written: 0, dropped: 0, refused: 0, pseudoStudyInstanceUid: d.studyInstanceUid };
}

/**
 * Send one pseudonymized series over one association, skipping instances the destination accepted
 * before, so retries and repeated runs send each file once. Connection problems and Out of Resources
 * are retried with backoff; permanent refusals are recorded without retrying.
 */
async function processSend(job: Job<SeriesTransferJob>, deps: SendDeps): Promise<SendResult> {
  const d = job.data;
  const deid = d.prepared
    ? preparedSeries(deps.cfg, d)
    : Object.values(await job.getChildrenValues<DeidentifyResult>())[0];
  if (!deid) throw new UnrecoverableError("de-identification result missing");
  const base = {
    seriesInstanceUid: d.seriesInstanceUid,
    refused: deid.refused,
    dropped: deid.dropped,
    ...(deid.pseudoStudyInstanceUid ? { pseudoStudyInstanceUid: deid.pseudoStudyInstanceUid } : {}),
    ...(deid.refusedReason ? { refusedReason: deid.refusedReason, error: deid.refusedReason } : {}),
  };
  const dest = storeDestinationFor(deps.cfg, d.project, deps.log);
  const sentKey = deps.transfers.sentKey(d.requestId);
  const lockKey = registryKeys(deps.prefix).sendLock(d.requestId, d.seriesInstanceUid);

  return withLock(
    deps.redis,
    lockKey,
    async () => {
      const names = (await fs.readdir(deid.outDir)).filter((f) => f.endsWith(".dcm")).sort();
      const sops = names.map((n) => n.slice(0, -".dcm".length));
      const known = sops.length ? await deps.redis.smismember(sentKey, ...sops) : [];
      const todo = names.filter((_, i) => !known[i]);
      const skipped = names.length - todo.length;
      if (todo.length === 0) return { ...base, sent: 0, skipped, failed: 0, warnings: 0 };

      const recorded: Array<Promise<unknown>> = [];
      let sent = 0;
      try {
        const report = await sendFiles(
          dest,
          todo.map((n) => path.join(deid.outDir, n)),
          {
            onProgress: ({ done, total, file }) => {
              if (file.outcome.kind !== "failure" && file.sopInstanceUid) {
                sent++;
                recorded.push(deps.redis.sadd(sentKey, file.sopInstanceUid));
              }
              if (done % 50 === 0 || done === total)
                void job.updateProgress(Math.round((done / total) * 100));
            },
          },
        );
        await Promise.all(recorded);
        if (report.retryable > 0) {
          throw new Error(
            `${report.retryable} of ${todo.length} files refused for now by ${report.destination}; will retry`,
          );
        }
        const firstFailure = report.files.find((f) => f.outcome.kind === "failure");
        if (report.warnings)
          deps.log.warn({ requestId: d.requestId, warnings: report.warnings }, "stored with warnings");
        return {
          ...base,
          sent: report.succeeded + report.warnings,
          skipped,
          failed: report.failed,
          warnings: report.warnings,
          ...(firstFailure
            ? { error: `${report.destination}: ${firstFailure.outcome.reason ?? "refused"}` }
            : {}),
        };
      } catch (e) {
        await Promise.all(recorded);
        if (e instanceof PermanentSendError) throw new UnrecoverableError(e.message);
        if (e instanceof RetryableSendError) {
          await job.log(`attempt ${job.attemptsMade + 1}: ${sent} sent, then: ${e.message}`);
        }
        throw e;
      }
    },
    { ttlMs: 20_000, waitMs: 30 * 60_000, renew: true },
  );
}

export const sendProcessor: Stage<SendDeps, SeriesTransferJob, SendResult> = (deps) => (job) =>
  processSend(job, deps);
