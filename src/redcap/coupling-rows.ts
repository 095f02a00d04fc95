/** CouplingList rows into the coupling registry, as if they were uploaded as a coupling list. */
import type { Redis } from "ioredis";
import type { Logger } from "../log.js";
import { CouplingRegistry } from "../registry/coupling.js";
import { identifierKey } from "../registry/identifier-key.js";
import { uploadCouplingList } from "../routing/coupling-upload.js";
import { parseCouplingCsv } from "../routing/coupling.js";
import { createRoutingDeps } from "../routing/deps.js";
import type { TransferDeps } from "../transfer/start.js";
import { cellText, type RedcapRow } from "./client.js";

const csvCell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const COUPLING_HEADER = "AccessionNumber,StudyInstanceUID,ProjectName,subjectid,eventname";

/**
 * CouplingList rows into the coupling registry (source "redcap"): each row is validated alone (invalid
 * ones are logged by record id and skipped); rows not yet stored are uploaded like a CSV upload (and
 * applied to the incoming list), rows already stored have their expiry refreshed.
 */
export async function applyCouplingRows(
  rows: readonly RedcapRow[],
  deps: TransferDeps & { redis: Redis; log: Logger },
): Promise<{ valid: number; added: number; skipped: number }> {
  const { cfg, log, redis } = deps;
  const fresh: string[] = [];
  const known = [];
  const coupling = new CouplingRegistry(redis, cfg.redis.prefix, {
    expiryDays: cfg.coupling.expiryDays,
    identifierKey: () => identifierKey(cfg),
  });
  let skipped = 0;
  for (const r of rows) {
    const recordId = cellText(r.record_id);
    if (!cellText(r.cl_projectname)) continue; // the original ignores rows without a project
    const line = [
      r.cl_accessionnumber,
      r.cl_studyinstanceuid,
      r.cl_projectname,
      r.cl_subjectid,
      r.cl_eventname,
    ]
      .map((v) => csvCell(cellText(v)))
      .join(",");
    const parsed = parseCouplingCsv(`${COUPLING_HEADER}\n${line}\n`, cfg.projects);
    const row = parsed.rows[0];
    if (parsed.errors.length || !row) {
      skipped++;
      log.warn(
        {
          table: "CouplingList",
          recordId,
          problem: parsed.errors.map((e) => `${e.column ?? "row"}: ${e.message}`).join("; "),
        },
        "REDCap row skipped",
      );
      continue;
    }
    if (await coupling.get(coupling.rowId(row))) known.push(row);
    else fresh.push(line);
  }
  if (known.length) await coupling.add(known, "redcap");
  if (fresh.length) {
    const routing = createRoutingDeps(deps, redis);
    const res = await uploadCouplingList(routing, `${COUPLING_HEADER}\n${fresh.join("\n")}\n`, "redcap");
    if (res.errors.length)
      log.warn({ table: "CouplingList", errors: res.errors.length }, "REDCap coupling rows not stored");
  }
  return { valid: known.length + fresh.length, added: fresh.length, skipped };
}
