/**
 * Where the time of one transfer run went, from the processedOn/finishedOn of its flow's jobs
 * (transfer parent → one send job per series → its deidentify child, see start.ts).
 */
import type { FlowProducer, Job, JobNode } from "bullmq";
import { QUEUES } from "../queues/index.js";

/** The jobs of one stage in one run. */
export interface StageJobs {
  jobs: number;
  /** Processing time of the jobs, added up (more than the wall time when they run side by side). */
  sumMs: number;
  /** The longest job. */
  maxMs: number;
  /** Wall time: the first job's start to the last job's end. */
  spanMs: number;
}

export interface StageTimings {
  /** Run started → its first job (de-identification, or send for a prepared series) started. */
  queueWaitMs: number;
  deidentify: StageJobs;
  send: StageJobs;
  /** Last send finished → the run's result recorded. */
  bookkeepingMs: number;
}

/** When a job's last attempt ran (epoch ms). */
export interface JobInterval {
  start: number;
  end: number;
}

// Timestamps may come from workers on several hosts: a clock a little off must not give negative times.
const nonNegative = (ms: number) => Math.max(0, Math.round(ms));

function stageJobs(xs: readonly JobInterval[]): StageJobs {
  if (xs.length === 0) return { jobs: 0, sumMs: 0, maxMs: 0, spanMs: 0 };
  const took = xs.map((x) => nonNegative(x.end - x.start));
  return {
    jobs: xs.length,
    sumMs: took.reduce((a, b) => a + b, 0),
    maxMs: Math.max(...took),
    spanMs: nonNegative(Math.max(...xs.map((x) => x.end)) - Math.min(...xs.map((x) => x.start))),
  };
}

/** Pure part: the stage timings of a run started at runStart and recorded at recordedAt. */
export function stageTimings(
  runStart: number,
  recordedAt: number,
  deidentify: readonly JobInterval[],
  send: readonly JobInterval[],
): StageTimings {
  const all = [...deidentify, ...send];
  const firstStart = all.length ? Math.min(...all.map((x) => x.start)) : recordedAt;
  const lastSend = send.length ? Math.max(...send.map((x) => x.end)) : recordedAt;
  return {
    queueWaitMs: nonNegative(firstStart - runStart),
    deidentify: stageJobs(deidentify),
    send: stageJobs(send),
    bookkeepingMs: nonNegative(recordedAt - lastSend),
  };
}

const interval = (job: Job | undefined): JobInterval | undefined =>
  job?.processedOn && job.finishedOn ? { start: job.processedOn, end: job.finishedOn } : undefined;

const isInterval = (x: JobInterval | undefined): x is JobInterval => x !== undefined;

/** Most series a run can have that are read back (as live-status.ts). */
const MAX_SERIES = 10_000;

/** The run's de-identification and send jobs that finished, read back from its flow. */
export async function runJobIntervals(
  flow: FlowProducer,
  parent: Job,
): Promise<{ deidentify: JobInterval[]; send: JobInterval[] }> {
  const tree = await flow.getFlow({
    id: parent.id!,
    queueName: QUEUES.transfer,
    depth: 3,
    maxChildren: MAX_SERIES,
  });
  const sends = (tree?.children ?? []).filter((c): c is JobNode => c?.job?.queueName === QUEUES.send);
  const deids = sends.flatMap((s) =>
    (s.children ?? []).filter((c) => c?.job?.queueName === QUEUES.deidentify),
  );
  return {
    deidentify: deids.map((d) => interval(d.job)).filter(isInterval),
    send: sends.map((s) => interval(s.job)).filter(isInterval),
  };
}
