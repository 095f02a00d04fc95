/**
 * Archive cleanup (FIONA's clearOldFiles): while the data disk is fuller than
 * schedules.archiveCleanup.maxDiskPercent, delete whole studies in the order of planArchiveCleanup
 * until it is below the target: archive folder, raw folder, participant links, finished outbox
 * folders and the incoming-list entry. Disk use is read again after each study.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { JobType, Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { isPathSafeUid } from "../dicom/uid.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { StudyRegistry } from "../registry/studies.js";
import type { TransferRecord, TransferRegistry } from "../registry/transfers.js";
import { planArchiveCleanup, type PlannedDeletion, type StudyCandidate } from "./plan.js";

export interface ArchiveCleanupDeps {
  cfg: FionaConfig;
  paths: SitePaths;
  redis: Redis;
  studies: StudyRegistry;
  transfers: TransferRegistry;
  log: Logger;
  /** Queues whose pending jobs (data.studyInstanceUid, or an ingest path) protect their study. */
  pipelineQueues: Queue[];
  /** Percent of the data disk in use (default diskUsedPercent of dataDir). */
  usage: (dir: string) => Promise<number>;
  /** Told once per run when the disk was above the threshold (automation trigger). */
  onDiskAbove?: (percent: number, threshold: number, dir: string) => Promise<void>;
  now?: number;
}

export interface ArchiveCleanupResult {
  usedPercent: number;
  dryRun: boolean;
  deleted: PlannedDeletion[];
  /** Studies kept because something is active for them. */
  protected: string[];
}

const PENDING: JobType[] = ["active", "wait", "delayed", "prioritized", "waiting-children"];
const SCP_DIR = /^scp_(.+)$/;

/** Study UIDs with a pending or running job in one of the pipeline queues. */
async function studiesWithJobs(queues: Queue[]): Promise<Set<string>> {
  const uids = new Set<string>();
  for (const q of queues) {
    for (const job of await q.getJobs(PENDING)) {
      const data = (job?.data ?? {}) as { studyInstanceUid?: unknown; path?: unknown };
      if (typeof data.studyInstanceUid === "string") uids.add(data.studyInstanceUid);
      if (typeof data.path === "string") {
        const m = SCP_DIR.exec(path.basename(path.dirname(data.path)));
        if (m) uids.add(m[1]!);
      }
    }
  }
  return uids;
}

const isTransferred = (t: TransferRecord[]) => t.length > 0 && t.every((r) => r.status === "done");

async function candidates(deps: ArchiveCleanupDeps): Promise<StudyCandidate[]> {
  const busy = await studiesWithJobs(deps.pipelineQueues);
  const out: StudyCandidate[] = [];
  for (const name of await fs.readdir(deps.paths.archive).catch(() => [] as string[])) {
    const uid = SCP_DIR.exec(name)?.[1];
    if (!uid || !isPathSafeUid(uid)) continue;
    const st = await fs.stat(path.join(deps.paths.archive, name)).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const requests = await deps.transfers.forStudy(uid);
    out.push({
      studyInstanceUid: uid,
      // The folder's mtime moves with every file renamed into it: the time of the last image.
      lastImageMs: st.mtimeMs,
      transferred: isTransferred(requests),
      active: busy.has(uid) || requests.some((r) => r.status === "queued"),
    });
  }
  return out;
}

/** Participant links (participants/<id>/<date_time>) by the resolved raw study folder they point to. */
async function participantLinks(participants: string): Promise<Map<string, string[]>> {
  const byTarget = new Map<string, string[]>();
  for (const person of await fs.readdir(participants).catch(() => [] as string[])) {
    const dir = path.join(participants, person);
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const link = path.join(dir, name);
      const target = await fs.readlink(link).catch(() => undefined);
      if (target === undefined) continue;
      const resolved = path.resolve(dir, target);
      byTarget.set(resolved, [...(byTarget.get(resolved) ?? []), link]);
    }
  }
  return byTarget;
}

async function deleteStudy(
  deps: ArchiveCleanupDeps,
  uid: string,
  links: Map<string, string[]>,
): Promise<void> {
  const { paths } = deps;
  const raw = path.resolve(paths.rawStudyDir(uid));
  for (const link of links.get(raw) ?? []) {
    await fs.rm(link, { force: true });
    // The participant folder goes with its last study.
    await fs.rmdir(path.dirname(link)).catch(() => {});
  }
  for (const t of await deps.transfers.forStudy(uid))
    if (/^[0-9a-f]{8,64}$/.test(t.requestId))
      await fs.rm(path.join(paths.outbox, t.requestId), { recursive: true, force: true });
  await fs.rm(raw, { recursive: true, force: true });
  await fs.rm(paths.archiveStudyDir(uid), { recursive: true, force: true });
  await deps.studies.remove(uid);
}

export async function runArchiveCleanup(
  deps: ArchiveCleanupDeps,
  dryRun: boolean,
): Promise<ArchiveCleanupResult> {
  const opts = deps.cfg.schedules.archiveCleanup;
  const target = opts.targetDiskPercent ?? Math.max(1, opts.maxDiskPercent - 5);
  const dir = deps.cfg.dataDir;
  let usedPercent = await deps.usage(dir);
  const result: ArchiveCleanupResult = { usedPercent, dryRun, deleted: [], protected: [] };
  if (usedPercent <= opts.maxDiskPercent) return result;
  deps.log.warn(
    { event: "disk-above", usedPercent, threshold: opts.maxDiskPercent, target, dryRun },
    "data disk above the cleanup threshold",
  );
  await deps.onDiskAbove?.(usedPercent, opts.maxDiskPercent, dir);
  const all = await candidates(deps);
  result.protected = all.filter((s) => s.active).map((s) => s.studyInstanceUid);
  const plan = planArchiveCleanup(all, deps.now ?? Date.now(), { retentionDays: opts.retentionDays });
  if (dryRun) {
    result.deleted = plan;
    deps.log.info(
      { event: "archive-cleanup-plan", plan, protected: result.protected },
      "dry run: nothing deleted",
    );
    return result;
  }
  const links = await participantLinks(deps.paths.participants);
  for (const p of plan) {
    if (usedPercent < target) break;
    await deleteStudy(deps, p.studyInstanceUid, links);
    result.deleted.push(p);
    usedPercent = await deps.usage(dir);
    deps.log.info(
      { event: "study-deleted", studyInstanceUid: p.studyInstanceUid, reason: p.reason, usedPercent },
      "archive cleanup deleted a study",
    );
  }
  result.usedPercent = usedPercent;
  if (usedPercent >= target)
    deps.log.warn(
      { event: "disk-still-full", usedPercent, target },
      "archive cleanup ran out of studies to delete",
    );
  return result;
}
