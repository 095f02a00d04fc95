import { Queue, type DefaultJobOptions, type ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { reportRedisErrors } from "./redis-errors.js";

/**
 * Every queue of the pipeline, its payload and its default options. Payloads carry identifiers
 * (UIDs, paths, AE titles), never patient data: BullMQ stores job data in clear text.
 */
export const QUEUES = {
  /** One received file to file under raw/, summarise and classify. */
  ingest: "ingest",
  /** Debounced per study: fires once the study has been quiet for arrival.quietSeconds. */
  arrival: "arrival",
  /** A study has (re)arrived; downstream stages (routing, REDCap, exports) start here. */
  studyArrived: "study-arrived",
  /** Parent of one transfer run: records the result once every series was handled. */
  transfer: "transfer",
  /** Child: pseudonymize one series into the outbox (CPU work in worker threads). */
  deidentify: "deidentify",
  /** Child: send one pseudonymized series to the research PACS over one association. */
  send: "send",
  /** Write to REDCap: an arrived study into Incoming, a transfer result back to its request. */
  redcapPush: "redcap-push",
  /** Read from REDCap: transfer requests created there (repeatable, every redcap.syncIntervalSeconds). */
  redcapSync: "redcap-sync",
  /** Run an analysis job (container or local algorithm) over a study and send its results back. */
  analysis: "analysis",
  /** Build one export archive (ZIP of a layout, or NIfTI) into the exports folder. */
  export: "export",
  /** Upload one finished export to an SFTP destination. */
  sftp: "sftp",
  /** C-ECHO of the receiver by itself (repeatable); processed inside the receiver process. */
  heartbeat: "heartbeat",
  /**
   * Disk and list housekeeping (repeatable): archive cleanup, stale links, incoming-list retention,
   * reconciling the archive with ingest, orphaned temporary files.
   */
  cleanup: "cleanup",
  /** Pull a study from a scanner: C-FIND its series, C-MOVE what is missing to FIONA (MPPS or manual). */
  scannerPull: "scanner-pull",
  /** C-FIND inventory of the research PACS per project, and reconciliation with what FIONA sent. */
  inventory: "inventory",
  /** Deliver one event-automation action (webhook, e-mail, command) for one trigger occurrence. */
  automation: "automation",
  /** Re-run classification of a study after a rule change; re-triggers routing where it changed. */
  reclassify: "reclassify",
  /** Convert one whole-slide upload (TIFF/SVS) to DICOM WSM and hand it to the send stage. */
  wsi: "wsi",
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
export const ALL_QUEUES: QueueName[] = Object.values(QUEUES);

export interface IngestJob {
  /** Absolute path of the archived Part-10 file. */
  path: string;
  callingAe: string;
  calledAe: string;
  /** Peer address of the association (IP). */
  peer: string;
  /** ISO time the C-STORE completed. */
  receivedAt: string;
}

export interface ArrivalJob {
  studyInstanceUid: string;
}

export interface StudyArrivedJob {
  studyInstanceUid: string;
  /** ISO time the quiet period ended. */
  arrivedAt: string;
  /** How many times this study has arrived (late images re-arm the debounce). */
  arrival: number;
  seriesCount: number;
  fileCount: number;
}

/** One run of a transfer request. Identifiers only: the participant is already a pseudonym. */
export interface TransferJob {
  requestId: string;
  run: number;
  studyInstanceUid: string;
  project: string;
  participant: string;
  event?: string;
  /** Set for a converted slide: the wsi upload whose file is deleted once the run is done. */
  uploadId?: string;
}

export interface SeriesTransferJob extends TransferJob {
  seriesInstanceUid: string;
  /** Already pseudonymized in the outbox (a converted slide): the send job has no deidentify child. */
  prepared?: boolean;
}

/**
 * REDCap jobs carry the REDCap project's configuration *name* ("incoming", "project:<NAME>", …); the
 * token is looked up at run time and never stored in job data.
 */
export interface RedcapPushJob {
  redcapProject: string;
  kind: "incoming-study" | "transfer-result";
  studyInstanceUid: string;
  requestId?: string;
  run?: number;
}

/** An analysis job (src/analysis): identifiers only; the participant is a pseudonym. */
export interface AnalysisJob {
  /** Name of the job definition (analysis.jobs[].name). */
  job: string;
  studyInstanceUid: string;
  project: string;
  participant: string;
  event?: string;
  trigger: "manual" | "called-ae" | "arrival";
  /** Set (e.g. by editing the job data in Bull Board) to cancel a running job. */
  cancel?: boolean;
}

export interface RedcapSyncJob {
  redcapProject: string;
  kind: "pull-transfers" | "pull-tables";
}

/**
 * Build an export whose record (src/export/store.ts) already holds the request, or (repeatable,
 * src/schedules/clear-exports.ts) clear old temp folders and the oldest exports of a full disk.
 */
export type ExportJob = { kind?: "build"; exportId: string } | { kind: "clear-exports" };

/** Upload an export to exports.sftp[destination]. */
export interface SftpJob {
  exportId: string;
  destination: string;
}

/** One self-check of the receiver (C-ECHO to its own port). */
export interface HeartbeatJob {
  kind: "echo";
}

/** Housekeeping; dryRun reports what would be deleted without deleting it. */
export interface CleanupJob {
  kind: "archive" | "stale-links" | "incoming-retention" | "reconcile" | "orphans";
  dryRun?: boolean;
}

/** Pull one study from a configured scanner (scanners.list[].name). */
export interface ScannerPullJob {
  studyInstanceUid: string;
  scanner: string;
  trigger: "mpps" | "manual";
  /** ISO time the pull started; the pull gives up scanners.giveUpHours after it. */
  startedAt: string;
  /** The last C-MOVE per series UID (epoch ms, no failed sub-operations, completed count). */
  moves?: Record<string, { at: number; ok: boolean; completed: number }>;
}

/** Inventory of one project in the research PACS (crawl), or the reconciliation against transfers. */
export interface InventoryJob {
  kind: "crawl" | "reconcile";
  /** Project name (the research PACS keeps it in InstitutionName); absent = every project. */
  project?: string;
}

/** One action of one subscription for one trigger occurrence. Identifiers only, never PHI. */
export interface AutomationJob {
  subscription: string;
  trigger: string;
  /** ISO time the trigger fired. */
  firedAt: string;
  /** What the trigger is about: UIDs, project, AE title, request id, disk percent … */
  subject: Record<string, string | number | boolean>;
}

export interface ReclassifyJob {
  studyInstanceUid: string;
}

/** Convert one whole-slide upload (src/wsi/uploads) and send it. */
export interface WsiJob {
  uploadId: string;
}

export interface JobPayloads {
  ingest: IngestJob;
  arrival: ArrivalJob;
  "study-arrived": StudyArrivedJob;
  transfer: TransferJob;
  deidentify: SeriesTransferJob;
  send: SeriesTransferJob;
  "redcap-push": RedcapPushJob;
  "redcap-sync": RedcapSyncJob;
  analysis: AnalysisJob;
  export: ExportJob;
  sftp: SftpJob;
  heartbeat: HeartbeatJob;
  cleanup: CleanupJob;
  "scanner-pull": ScannerPullJob;
  inventory: InventoryJob;
  automation: AutomationJob;
  reclassify: ReclassifyJob;
  wsi: WsiJob;
}

const retainBounded = {
  removeOnComplete: { age: 24 * 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
} satisfies DefaultJobOptions;

export const DEFAULT_JOB_OPTIONS: Record<QueueName, DefaultJobOptions> = {
  ingest: { attempts: 5, backoff: { type: "exponential", delay: 500, jitter: 0.5 }, ...retainBounded },
  arrival: { attempts: 5, backoff: { type: "exponential", delay: 1000, jitter: 0.5 }, ...retainBounded },
  "study-arrived": {
    attempts: 5,
    backoff: { type: "exponential", delay: 2000, jitter: 0.5 },
    ...retainBounded,
  },
  transfer: { attempts: 5, backoff: { type: "exponential", delay: 2000, jitter: 0.5 }, ...retainBounded },
  deidentify: { attempts: 3, backoff: { type: "exponential", delay: 2000, jitter: 0.5 }, ...retainBounded },
  // Attempts and backoff of sends come from configuration: see jobOptions.
  send: { attempts: 12, backoff: { type: "exponential", delay: 2000, jitter: 0.5 }, ...retainBounded },
  // 429 (IP ban), 400 and 403 fail at once (UnrecoverableError); 5xx and timeouts back off.
  "redcap-push": {
    attempts: 8,
    backoff: { type: "exponential", delay: 5000, jitter: 0.5 },
    ...retainBounded,
  },
  "redcap-sync": { attempts: 1, ...retainBounded },
  // An algorithm is not re-run on failure (time limit, rejected output); retry from Bull Board.
  analysis: { attempts: 1, ...retainBounded },
  export: { attempts: 2, backoff: { type: "exponential", delay: 5000, jitter: 0.5 }, ...retainBounded },
  // Each attempt already retries dropped connections (exports.sftp.<dest>.attempts).
  sftp: { attempts: 3, backoff: { type: "exponential", delay: 30_000, jitter: 0.5 }, ...retainBounded },
  // A missed heartbeat is counted, not retried: the next one comes a minute later.
  heartbeat: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } },
  cleanup: { attempts: 1, ...retainBounded },
  // A pull re-checks the scanner until it is complete or past scanners.giveUpHours (the job re-delays itself).
  "scanner-pull": {
    attempts: 5,
    backoff: { type: "exponential", delay: 5000, jitter: 0.5 },
    ...retainBounded,
  },
  inventory: { attempts: 3, backoff: { type: "exponential", delay: 30_000, jitter: 0.5 }, ...retainBounded },
  automation: { attempts: 6, backoff: { type: "exponential", delay: 5000, jitter: 0.5 }, ...retainBounded },
  reclassify: { attempts: 3, backoff: { type: "exponential", delay: 2000, jitter: 0.5 }, ...retainBounded },
  // Conversion is deterministic: a failure (bad TIFF) fails again; two attempts cover a crashed worker.
  wsi: { attempts: 2, backoff: { type: "exponential", delay: 10_000, jitter: 0.5 }, ...retainBounded },
};

/**
 * The options of a job on `name`: the defaults above with the configured parts, so that every place
 * that adds a job (queues, flows) gets the same ones. Sends take transfer.attempts and transfer.backoffMs.
 */
export function jobOptions(name: QueueName, cfg: Pick<FionaConfig, "transfer">): DefaultJobOptions {
  const defaults = DEFAULT_JOB_OPTIONS[name];
  if (name !== QUEUES.send) return defaults;
  const { attempts, backoffMs } = cfg.transfer;
  return { ...defaults, attempts, backoff: { type: "exponential", delay: backoffMs, jitter: 0.5 } };
}

export type TypedQueue<N extends QueueName> = Queue<JobPayloads[N], unknown, string>;

export function createQueue<N extends QueueName>(
  name: N,
  connection: Redis | ConnectionOptions,
  prefix: string,
): TypedQueue<N> {
  const queue = new Queue<JobPayloads[N], unknown, string>(name, {
    connection,
    prefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS[name],
  });
  // A Queue without an "error" listener prints every connection error as a raw stack trace.
  reportRedisErrors(queue, `queue:${name}`);
  return queue;
}

/** Debounce id for a study's arrival job. */
export const arrivalDedupId = (studyInstanceUid: string) => `arrival:${studyInstanceUid}`;
