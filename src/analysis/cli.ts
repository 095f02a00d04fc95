import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { QUEUES, createQueue } from "../queues/index.js";
import { enqueueAnalysis, requestCancel } from "./trigger.js";
import { auditCliAction } from "../cli/cli-audit.js";

export interface AnalyzeOptions {
  job: string;
  project: string;
  participant: string;
  event?: string;
}

/** `fiona analyze <StudyInstanceUID> --job J --project P --participant S`: queue one analysis run. */
export async function analyzeCommand(cfg: FionaConfig, studyUid: string, o: AnalyzeOptions): Promise<void> {
  const redis = await connectProducer(cfg.redis);
  const queue = createQueue(QUEUES.analysis, redis, cfg.redis.prefix);
  try {
    const id = await enqueueAnalysis(cfg, queue, {
      job: o.job,
      studyInstanceUid: studyUid,
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
    });
    console.log(`analysis ${o.job} queued as job ${id} (queue ${QUEUES.analysis})`);
    await auditCliAction(cfg, {
      action: "analyze",
      study: studyUid,
      project: o.project,
      participant: o.participant,
      ...(o.event !== undefined ? { event: o.event } : {}),
      queue: QUEUES.analysis,
      jobId: id,
      detail: o.job,
    });
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** `fiona analyze-cancel <jobId>`: ask a running analysis job to stop. */
export async function cancelAnalysisCommand(cfg: FionaConfig, jobId: string): Promise<void> {
  const redis = await connectProducer(cfg.redis);
  const queue = createQueue(QUEUES.analysis, redis, cfg.redis.prefix);
  try {
    if (!(await requestCancel(queue, jobId))) throw new Error(`no analysis job ${jobId}`);
    console.log(`cancel requested for analysis job ${jobId}`);
    await auditCliAction(cfg, { action: "analyze-cancel", queue: QUEUES.analysis, jobId });
  } finally {
    await queue.close();
    redis.disconnect();
  }
}
