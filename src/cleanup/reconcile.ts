/**
 * Self-healing of ingest. An archived file without a raw link and without a pending ingest job was
 * acknowledged but would never be filed (its job was lost with Redis, or a crash came between rename
 * and enqueue): a pass queues an ingest job for it, with an id derived from its path, so that repeated
 * and concurrent passes add it once. Ingest jobs that failed for a transient cause
 * (src/cleanup/transient.ts) run again. Files whose ingest failed for good stay with the failures
 * list (`fiona failures`). Study folders are read incrementally (src/cleanup/passes.ts); files younger
 * than `minAgeSeconds` are left for a later pass, as their job may still be on its way.
 */
import { createHash } from "node:crypto";
import type { Job, JobType } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import { recordIdOf, type QuarantineRecord } from "../quarantine/record.js";
import type { QuarantineStore } from "../quarantine/store.js";
import { QUEUES, createQueue, type IngestJob, type TypedQueue } from "../queues/index.js";
import { notePendingIngest } from "../ingest/pending.js";
import type { StudyRegistry } from "../registry/studies.js";
import {
  archivedFiles,
  changedMs,
  linkedInstances,
  studyFolders,
  type ArchivedFile,
} from "./archive-scan.js";
import { BUSY, IncrementalPasses, exclusive } from "./passes.js";
import { recordedConnection, type RecordedConnection } from "./recorded-connection.js";
import { isTransientFailure } from "./transient.js";

export interface ReconcileDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  redis: Redis;
  log: Logger;
  studies: StudyRegistry;
  quarantine: QuarantineStore;
  /** Stops a pass between study folders (process shutdown); a stopped pass records nothing. */
  signal?: AbortSignal;
}

export interface ReconcileResult {
  full: boolean;
  /** Study folders read. */
  scanned: number;
  /** Archived files in them. */
  files: number;
  enqueued: number;
  retried: number;
  /** Unlinked files whose ingest job is still pending. */
  pending: number;
  /** Too many pending ingest jobs to look through: unlinked files were left for a later pass. */
  deferred: boolean;
  ms: number;
}

const PENDING: JobType[] = ["active", "wait", "prioritized", "delayed", "waiting-children"];
/** Beyond this many pending ingest jobs a pass does not read them all; ingest is busy anyway. */
const MAX_PENDING_SCAN = 20_000;
const PAGE = 1000;

/** The id of the reconciler's ingest job for an archived file. */
export const reconcileJobId = (file: string) =>
  `reconcile-${createHash("sha256").update(file).digest("hex").slice(0, 32)}`;

interface Unlinked extends ArchivedFile {
  folder: string;
  studyInstanceUid: string;
  changedMs: number;
}

const pathOf = (job: Job | undefined) => (job?.data as Partial<IngestJob> | undefined)?.path;

/** Paths (among `wanted`) of pending ingest jobs, read a page at a time. */
async function pendingPaths(queue: TypedQueue<"ingest">, wanted: Set<string>): Promise<Set<string>> {
  const found = new Set<string>();
  for (const state of PENDING) {
    for (let start = 0; ; start += PAGE) {
      const jobs = await queue.getJobs([state], start, start + PAGE - 1, true);
      for (const p of jobs.map(pathOf)) if (p !== undefined && wanted.has(p)) found.add(p);
      if (jobs.length < PAGE) break;
    }
  }
  return found;
}

/** Run the failed ingest jobs with a transient reason again; returns their count and every failed path. */
async function retryTransient(
  queue: TypedQueue<"ingest">,
  quarantine: QuarantineStore,
): Promise<{ retried: number; failedPaths: Set<string> }> {
  const failed = (await queue.getFailed(0, -1)).filter((j): j is NonNullable<typeof j> => !!j);
  let retried = 0;
  for (const job of failed) {
    if (!isTransientFailure(job.failedReason)) continue;
    await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
    // Its failure record goes, as with `fiona failures retry`: a new failure makes a new one.
    const id = job.id ?? "";
    await quarantine.remove(
      recordIdOf({ stage: QUEUES.ingest, reason: "", ids: {}, job: { id, name: job.name, data: job.data } }),
    );
    retried++;
  }
  return { retried, failedPaths: new Set(failed.map(pathOf).filter((p): p is string => !!p)) };
}

/** The ingest stage's failure records by file path, for the files they name. */
async function quarantinedByPath(quarantine: QuarantineStore): Promise<Map<string, QuarantineRecord>> {
  const byPath = new Map<string, QuarantineRecord>();
  for (const r of await quarantine.list({ stage: QUEUES.ingest })) {
    const p = pathOf(r.job as Job | undefined);
    if (p !== undefined) byPath.set(p, r);
  }
  return byPath;
}

async function pass(deps: ReconcileDeps, full: boolean): Promise<ReconcileResult | undefined> {
  const { cfg, paths } = deps;
  const opts = cfg.schedules.reconcile;
  const passes = new IncrementalPasses(
    deps.redis,
    `${cfg.redis.prefix}:cleanup:reconcile`,
    opts.fullPassHours * 3600_000,
  );
  const queue = createQueue(QUEUES.ingest, deps.redis, cfg.redis.prefix);
  try {
    const p = await passes.begin({ full });
    const { retried, failedPaths } = await retryTransient(queue, deps.quarantine);
    const r: ReconcileResult = {
      full: p.full,
      scanned: 0,
      files: 0,
      enqueued: 0,
      retried,
      pending: 0,
      deferred: false,
      ms: 0,
    };
    const recheck = new Set<string>();
    const unlinked: Unlinked[] = [];
    for await (const folder of studyFolders(paths)) {
      if (deps.signal?.aborted) return undefined;
      if (!passes.reads(p, folder.name, folder.mtimeMs)) continue;
      r.scanned++;
      const files = await archivedFiles(folder);
      r.files += files.length;
      const linked = await linkedInstances(paths, folder.studyInstanceUid);
      for (const f of files.filter((x) => !linked.has(x.sopInstanceUid) && !failedPaths.has(x.path))) {
        const changed = await changedMs(f.path);
        if (changed === undefined) continue;
        // Younger files wait (their job may be on its way); with no minimum age nothing waits, whatever
        // the file system clock's granularity says about a file written just before the pass.
        if (opts.minAgeSeconds > 0 && p.startedAt - changed < opts.minAgeSeconds * 1000)
          recheck.add(folder.name);
        else
          unlinked.push({
            ...f,
            folder: folder.name,
            studyInstanceUid: folder.studyInstanceUid,
            changedMs: changed,
          });
      }
    }
    if (unlinked.length) {
      const counts = await queue.getJobCounts(...PENDING);
      if (Object.values(counts).reduce((a, b) => a + b, 0) > MAX_PENDING_SCAN) {
        r.deferred = true;
        for (const u of unlinked) recheck.add(u.folder);
      } else {
        await enqueueMissing(deps, queue, unlinked, r, recheck);
      }
    }
    await passes.commit(p, recheck);
    r.ms = Date.now() - p.startedAt;
    return r;
  } finally {
    await queue.close();
  }
}

/**
 * Queue ingest jobs for the unlinked files that have none pending, were not linked meanwhile and did
 * not fail for good (a failure record with a transient reason, whose job BullMQ no longer keeps, is
 * retried this way and its record dropped).
 */
async function enqueueMissing(
  deps: ReconcileDeps,
  queue: TypedQueue<"ingest">,
  unlinked: Unlinked[],
  r: ReconcileResult,
  recheck: Set<string>,
): Promise<void> {
  const busy = await pendingPaths(queue, new Set(unlinked.map((u) => u.path)));
  const quarantined = await quarantinedByPath(deps.quarantine);
  // Read again after the pending jobs: an ingest may have finished while they were read.
  const linkedNow = new Map<string, Set<string>>();
  const connections = new Map<string, RecordedConnection>();
  for (const u of unlinked) {
    const record = quarantined.get(u.path);
    if (record && !isTransientFailure(record.reason)) continue;
    const id = reconcileJobId(u.path);
    const earlier = busy.has(u.path) ? undefined : await queue.getJob(id);
    const state = await earlier?.getState();
    if (busy.has(u.path) || (state !== undefined && state !== "completed" && state !== "unknown")) {
      r.pending++;
      recheck.add(u.folder);
      continue;
    }
    if (!linkedNow.has(u.studyInstanceUid))
      linkedNow.set(u.studyInstanceUid, await linkedInstances(deps.paths, u.studyInstanceUid));
    if (linkedNow.get(u.studyInstanceUid)!.has(u.sopInstanceUid)) continue;
    if (!connections.has(u.studyInstanceUid))
      connections.set(u.studyInstanceUid, await recordedConnection(deps, u.studyInstanceUid, u.path));
    // A finished job of an earlier pass would make the add a no-op: the file needs filing again.
    await earlier?.remove();
    const data: IngestJob = {
      path: u.path,
      ...connections.get(u.studyInstanceUid)!,
      receivedAt: new Date(u.changedMs).toISOString(),
    };
    // Noted pending with its study like the receiver's jobs, so the study does not arrive without it.
    await Promise.all([
      notePendingIngest(deps.redis, deps.cfg.redis.prefix, u.studyInstanceUid, id, u.changedMs),
      queue.add(QUEUES.ingest, data, { jobId: id }),
    ]);
    if (record) await deps.quarantine.remove(record.id);
    r.enqueued++;
    recheck.add(u.folder); // until it is filed: its job is as pending as any other
  }
}

/**
 * One reconcile pass, one at a time across processes (BUSY when another one holds on for longer than
 * `waitMs`); logs one `reconcile` event with its counts. Undefined when stopped by deps.signal.
 */
export async function runReconcile(
  deps: ReconcileDeps,
  opts: { full?: boolean; waitMs?: number } = {},
): Promise<ReconcileResult | typeof BUSY | undefined> {
  const key = `${deps.cfg.redis.prefix}:cleanup:reconcile`;
  const r = await exclusive(deps.redis, key, { waitMs: opts.waitMs ?? 30_000, signal: deps.signal }, () =>
    pass(deps, !!opts.full),
  );
  if (r === BUSY) deps.log.info({ event: "reconcile", ...BUSY }, "reconcile skipped");
  else if (r) deps.log.info({ event: "reconcile", ...r }, "archive reconciled with ingest");
  return r;
}
