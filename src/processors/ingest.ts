import path from "node:path";
import { UnrecoverableError, type Job } from "bullmq";
import { readHeaderFile, type DicomHeader } from "../dicom/header.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { ensureSymlink } from "../fs/atomic.js";
import type { SeriesWriter } from "../ingest/series-writer.js";
import type { Logger } from "../log.js";
import { safePathComponent, type SitePaths } from "../paths.js";
import type { IngestJob } from "../queues/index.js";
import type { StudyActivity } from "../ingest/study-activity.js";
import type { Stage } from "./stage.js";

export interface IngestDeps {
  paths: SitePaths;
  seriesWriter: SeriesWriter;
  studyActivity: StudyActivity;
  log: Logger;
}

export type IngestResult =
  | { studyInstanceUid: string; seriesInstanceUid: string; numFiles: number; classifyType: string[] }
  | { skipped: string };

function requireUid(header: DicomHeader, keyword: string): string {
  const v = header.string(keyword);
  if (!isPathSafeUid(v)) throw new UnrecoverableError(`${keyword} missing or not a valid UID`);
  return v;
}

/**
 * The receiver sends a new instance's job while it writes the file, so a job can come first: look
 * again a few times over about 1.5 s. A file still missing then was never archived (the receiver
 * removed it when its enqueue failed): undefined.
 */
async function readArchived(file: string): Promise<DicomHeader | undefined> {
  for (const waitMs of [5, 20, 100, 400, 1000, -1]) {
    try {
      return await readHeaderFile(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A system error (ENOSPC, EIO, EMFILE…) is not the file's fault: retried, not refused for good.
      if (typeof code === "string" && code !== "ENOENT") throw e;
      if (code !== "ENOENT") throw new UnrecoverableError(`unreadable DICOM: ${(e as Error).message}`);
      if (waitMs < 0) return undefined;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
  return undefined;
}

/** File one archived image: raw/ links, participant link, series JSON with classification, arrival. */
async function ingestFile(job: Job<IngestJob>, deps: IngestDeps): Promise<IngestResult> {
  const { data } = job;
  const { paths } = deps;
  if (!path.isAbsolute(data.path) || !data.path.startsWith(paths.archive + path.sep)) {
    throw new UnrecoverableError("ingest path is outside the archive");
  }
  const header = await readArchived(data.path);
  if (header === undefined) {
    deps.log.info({ file: path.basename(data.path) }, "archived file is gone; nothing to ingest");
    return { skipped: "file gone" };
  }
  const study = requireUid(header, "StudyInstanceUID");
  const series = requireUid(header, "SeriesInstanceUID");
  const sop = requireUid(header, "SOPInstanceUID");

  const seriesDir = paths.rawSeriesDir(study, series);
  await ensureSymlink(data.path, path.join(seriesDir, sop));
  await linkParticipant(header, paths, study);

  const conn = { callingAe: data.callingAe, calledAe: data.calledAe, peer: data.peer };
  const summary = await deps.seriesWriter.submit(study, series, header, conn);

  await deps.studyActivity.submit(study, {
    studyInstanceUid: study,
    ...conn,
    header,
    jobId: job.id ?? "",
    receivedAtMs: Date.parse(data.receivedAt) || Date.now(),
  });
  return {
    studyInstanceUid: study,
    seriesInstanceUid: series,
    numFiles: Number(summary.NumFiles),
    classifyType: summary.ClassifyType ?? [],
  };
}

/** Participant links this process made or found, so a study's other images skip the syscall. */
const knownParticipantLinks = new Set<string>();

/** participants/<PatientID>/<StudyDate>_<StudyTime> -> raw/<Study>, as FIONA keeps it. */
async function linkParticipant(header: DicomHeader, paths: SitePaths, study: string): Promise<void> {
  const patientId = header.string("PatientID");
  if (!patientId) return;
  const when = `${safePathComponent(header.string("StudyDate") ?? "", "unknown")}_${safePathComponent(
    header.string("StudyTime") ?? "",
    "unknown",
  )}`;
  const link = path.join(paths.participants, safePathComponent(patientId), when);
  if (knownParticipantLinks.has(link)) return;
  await ensureSymlink(paths.rawStudyDir(study), link);
  if (knownParticipantLinks.size > 10_000) knownParticipantLinks.clear();
  knownParticipantLinks.add(link);
}

export const ingestProcessor: Stage<IngestDeps, IngestJob, IngestResult> = (deps) => (job) =>
  ingestFile(job, deps);
