import { existsSync } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../config/schema.js";
import type { SitePaths } from "../paths.js";
import type { TransferRegistry } from "../registry/transfers.js";
import { requestId, validateRequest } from "../transfer/request.js";
import type { ExportLayout, ExportRequest } from "./store.js";

export interface ExportAsk {
  studyInstanceUid: string;
  project: string;
  participant: string;
  event?: string;
  layout: ExportLayout;
  requestedBy: string;
  /** NoAssign: always pseudonymize the received study now, even if it was transferred. */
  noAssign?: boolean;
}

/**
 * Validate (participant pattern, events) and pick the source: the pseudonymized files of the matching
 * transfer when they are still in the outbox, else the study pseudonymized on the fly.
 * Throws InvalidRequestError (src/transfer/request.ts) for a bad request.
 */
export async function exportRequest(
  cfg: FionaConfig,
  paths: SitePaths,
  transfers: TransferRegistry,
  a: ExportAsk,
): Promise<ExportRequest> {
  const t = {
    studyInstanceUid: a.studyInstanceUid,
    project: a.project,
    participant: a.participant,
    ...(a.event ? { event: a.event } : {}),
    requestedBy: a.requestedBy,
  };
  validateRequest(t, cfg.projects);
  const base = { ...t, layout: a.layout };
  if (!a.noAssign) {
    const id = requestId(t);
    const rec = await transfers.get(id);
    if (rec?.status === "done" && existsSync(path.join(paths.outbox, id)))
      return { ...base, source: "transfer", requestId: id };
  }
  return { ...base, source: "received" };
}
