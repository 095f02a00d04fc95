/**
 * Both directions of the reconciliation between what FIONA sent to a project and what the research
 * PACS holds for it (the original, whatIsNotInIDS7.py, did only the first):
 * - missingInPacs: studies FIONA sent (a transfer that delivered files) that the PACS no longer lists;
 * - notSentByFiona: studies the PACS lists that no transfer of FIONA delivered.
 * Transfers are matched by their pseudonymized StudyInstanceUID, the UID the PACS knows.
 */
import type { TransferRecord } from "../registry/transfers.js";
import type { InventoryStudy } from "./studies.js";

export interface SentStudy {
  /** Pseudonymized StudyInstanceUID. */
  studyInstanceUid: string;
  participant: string;
  event?: string;
  requestIds: string[];
  filesSent: number;
  /** ISO time of the latest run. */
  sentAt: string;
}

export interface Reconciliation {
  project: string;
  /** ISO time of the crawl compared. */
  crawledAt: string;
  /** False when the crawl was incomplete: missingInPacs may then list studies the PACS still has. */
  complete: boolean;
  pacsStudies: number;
  sentStudies: number;
  missingInPacs: SentStudy[];
  notSentByFiona: InventoryStudy[];
}

/** Studies the project's transfers delivered, one per pseudonymized StudyInstanceUID. */
export function sentStudies(transfers: readonly TransferRecord[], project: string): SentStudy[] {
  const byUid = new Map<string, SentStudy>();
  for (const t of transfers) {
    if (t.project !== project || !t.pseudoStudyInstanceUid || t.filesSent <= 0) continue;
    if (t.status !== "done" && t.status !== "partial") continue;
    const seen = byUid.get(t.pseudoStudyInstanceUid);
    if (seen) {
      seen.requestIds.push(t.requestId);
      seen.filesSent = Math.max(seen.filesSent, t.filesSent);
      if (t.updatedAt > seen.sentAt) seen.sentAt = t.updatedAt;
      continue;
    }
    byUid.set(t.pseudoStudyInstanceUid, {
      studyInstanceUid: t.pseudoStudyInstanceUid,
      participant: t.participant,
      ...(t.event !== undefined ? { event: t.event } : {}),
      requestIds: [t.requestId],
      filesSent: t.filesSent,
      sentAt: t.updatedAt,
    });
  }
  return [...byUid.values()];
}

export function reconcile(
  inventory: { project: string; crawledAt: string; complete: boolean; studies: readonly InventoryStudy[] },
  sent: readonly SentStudy[],
): Reconciliation {
  const inPacs = new Set(inventory.studies.map((s) => s.studyInstanceUid));
  const sentUids = new Set(sent.map((s) => s.studyInstanceUid));
  return {
    project: inventory.project,
    crawledAt: inventory.crawledAt,
    complete: inventory.complete,
    pacsStudies: inPacs.size,
    sentStudies: sentUids.size,
    missingInPacs: sent.filter((s) => !inPacs.has(s.studyInstanceUid)),
    notSentByFiona: inventory.studies.filter((s) => !sentUids.has(s.studyInstanceUid)),
  };
}
