/**
 * Rows of the DataTransferProjects and Routing tables, validated one by one: an invalid row is skipped
 * with a log line naming its record id and the problem, never a token or patient data.
 */
import type { z } from "zod";
import { configSchema, projectSchema, type RoutingRuleConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { cellText, type RedcapClient, type RedcapRow } from "./client.js";

/** What a DataTransferProjects row says about a project (validated). */
export interface RedcapProjectRow {
  recordId: string;
  name: string;
  active: boolean;
  participantPattern?: string;
  /** Only when the row has the project_features checkbox columns. */
  features?: { dropPresentationStates: boolean; burnedIn?: "drop" | "send" };
  /** false: REDCap says no auto-ID; undefined: the row does not say. */
  autoId?: { aeTitle: string } | false;
}

const ruleSchema = configSchema.shape.routing.removeDefault().shape.rules.removeDefault().element;

export const issueText = (e: z.ZodError) =>
  e.issues.map((i) => `${i.path.join(".") || "row"}: ${i.message}`).join("; ");

/** DataTransferProjects rows into project overrides; invalid rows are skipped and logged. */
export function parseProjectRows(rows: readonly RedcapRow[], log: Logger): RedcapProjectRow[] {
  const out: RedcapProjectRow[] = [];
  for (const r of rows) {
    const recordId = cellText(r.record_id);
    const name = cellText(r.project_name) || recordId;
    const skip = (problem: string) =>
      log.warn({ table: "DataTransferProjects", recordId, problem }, "REDCap row skipped");
    if (!name) {
      skip("no project_name");
      continue;
    }
    const row: RedcapProjectRow = { recordId, name, active: cellText(r.project_active) !== "0" };
    const pattern = cellText(r.project_patient_naming);
    if (pattern) row.participantPattern = pattern;
    if ("project_features___0" in r) {
      const f = (c: string) => cellText(r[`project_features___${c}`]) === "1";
      row.features = {
        dropPresentationStates: f("0"),
        ...(f("2") ? { burnedIn: "drop" as const } : f("1") ? { burnedIn: "send" as const } : {}),
      };
    }
    const useAuto = cellText(r.project_use_autoid);
    if (useAuto === "0") row.autoId = false;
    else if (useAuto === "1") {
      const aeTitle = cellText(r.project_autoid_aetitle);
      if (!aeTitle) {
        skip("project_use_autoid is set but project_autoid_aetitle is empty");
        continue;
      }
      row.autoId = { aeTitle };
    }
    // Validate what the row alone can say (name, pattern) with the project schema.
    const check = projectSchema.safeParse({
      name,
      ...(row.participantPattern ? { participantPattern: row.participantPattern } : {}),
    });
    if (!check.success) {
      skip(issueText(check.error));
      continue;
    }
    if (out.some((p) => p.name === name)) {
      skip(`duplicate project ${name}`);
      continue;
    }
    out.push(row);
  }
  return out;
}

/** Labels of the routing_dest_project dropdown (the label is the project name, as the original). */
export async function destProjectLabels(client: RedcapClient): Promise<Map<string, string>> {
  const meta = await client.metadata({ fields: ["routing_dest_project"] });
  const choices = cellText(meta[0]?.select_choices_or_calculations);
  const m = new Map<string, string>();
  for (const c of choices.split("|")) {
    const i = c.indexOf(",");
    if (i > 0) m.set(c.slice(0, i).trim(), c.slice(i + 1).trim());
  }
  return m;
}

/** Routing rows into rules `redcap:<record_id>`; invalid rows are skipped and logged. */
export function parseRoutingRows(
  rows: readonly RedcapRow[],
  labels: ReadonlyMap<string, string>,
  log: Logger,
): RoutingRuleConfig[] {
  const out: RoutingRuleConfig[] = [];
  for (const r of rows) {
    const recordId = cellText(r.record_id);
    const code = cellText(r.routing_dest_project);
    const project = labels.get(code) ?? code;
    const opt = (k: string, v: string) => (v ? { [k]: v } : {});
    const parsed = ruleSchema.safeParse({
      name: `redcap:${recordId}`,
      active: cellText(r.routing_active) === "1",
      project,
      ...opt("calledAe", cellText(r.routing_incoming_aetitle)),
      ...opt("callingAe", cellText(r.routing_sending_aetitle)),
      ...opt("patientId", cellText(r.routing_allowed_patientid)),
      ...opt("patientName", cellText(r.routing_allowed_patientname)),
      ...opt("event", cellText(r.routing_event_name)),
    });
    if (!parsed.success) {
      log.warn({ table: "Routing", recordId, problem: issueText(parsed.error) }, "REDCap row skipped");
      continue;
    }
    out.push(parsed.data);
  }
  return out;
}
