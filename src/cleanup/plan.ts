/** Which studies the archive cleanup deletes, and in which order (pure; src/cleanup/archive.ts acts on it). */

export type DeletionReason = "transferred" | "past-retention" | "unsent-disk-full";

export interface StudyCandidate {
  studyInstanceUid: string;
  /** Time of the study's last image (ms). */
  lastImageMs: number;
  /** It has transfer requests and every one of them succeeded. */
  transferred: boolean;
  /** A transfer request is queued or running, or a pipeline job for the study is pending. */
  active: boolean;
}

export interface PlannedDeletion {
  studyInstanceUid: string;
  reason: DeletionReason;
  lastImageMs: number;
}

const DAY_MS = 86_400_000;

/**
 * Transferred or past-retention studies first, then unsent ones, each group oldest first; a study
 * with anything active is never planned.
 */
export function planArchiveCleanup(
  studies: readonly StudyCandidate[],
  now: number,
  opts: { retentionDays: number },
): PlannedDeletion[] {
  const cutoff = now - opts.retentionDays * DAY_MS;
  const reasonOf = (s: StudyCandidate): DeletionReason =>
    s.transferred ? "transferred" : s.lastImageMs < cutoff ? "past-retention" : "unsent-disk-full";
  const rank = (r: DeletionReason) => (r === "unsent-disk-full" ? 1 : 0);
  return studies
    .filter((s) => !s.active)
    .map((s) => ({ studyInstanceUid: s.studyInstanceUid, reason: reasonOf(s), lastImageMs: s.lastImageMs }))
    .sort((a, b) => rank(a.reason) - rank(b.reason) || a.lastImageMs - b.lastImageMs);
}
