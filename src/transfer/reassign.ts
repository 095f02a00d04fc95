import type { TransferRecord, TransferRegistry } from "../registry/transfers.js";
import type { TransferRequest } from "./request.js";

/**
 * Pseudonymized UIDs depend on the project, not on the participant: sending a study again for another
 * participant of the same project re-files the research PACS copy under the new participant. That
 * must be a deliberate act, never a side effect of a typo or a second coupling row.
 */
export class ReassignmentRefused extends Error {
  constructor(readonly earlier: TransferRecord[]) {
    const who = [...new Set(earlier.map((t) => t.participant))].join(", ");
    super(
      `this study was already sent for ${earlier[0]!.project} as participant ${who}; its pseudonymized ` +
        `UIDs are the same for every participant of the project, so sending it again moves the research ` +
        `PACS copy to the new participant. Confirm to re-assign it (--replace, or confirm on the page).`,
    );
  }
}

/** Earlier requests that sent (some of) this study for the same project under another participant. */
export async function sentToOtherParticipants(
  transfers: TransferRegistry,
  r: TransferRequest,
): Promise<TransferRecord[]> {
  const others = (await transfers.forStudy(r.studyInstanceUid)).filter(
    (t) => t.project === r.project && t.participant !== r.participant,
  );
  const sent = await Promise.all(others.map((t) => transfers.sentCount(t.requestId)));
  return others.filter((_, i) => sent[i]! > 0);
}

/** Throws ReassignmentRefused unless the caller confirmed the re-assignment. */
export async function refuseSilentReassignment(
  transfers: TransferRegistry,
  r: TransferRequest,
  confirmed: boolean,
): Promise<TransferRecord[]> {
  const earlier = await sentToOtherParticipants(transfers, r);
  if (earlier.length && !confirmed) throw new ReassignmentRefused(earlier);
  return earlier;
}
