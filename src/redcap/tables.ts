/**
 * Configuration tables pulled from REDCap: DataTransferProjects, Routing,
 * CouplingList, and the AutoID table written back.
 *
 * The redcap-sync job pulls the tables, validates each row (an invalid row is skipped with a log line
 * naming its record id and the problem, never a token or patient data) and stores the valid ones in
 * Redis (`<prefix>:redcap:tables`, one field per table). Every worker process merges them with its
 * ORIGINAL file configuration (a frozen copy taken once) into `cfg.projects` and `cfg.routing.rules`
 * (ConfigRefresher); the file's own objects are never changed. REDCap wins where configured:
 * - a project row replaces, for the project of the same name, the participant pattern, the active flag
 *   (an inactive project is left out), the features and the auto-ID AE title; destination, de-
 *   identification settings and the auto-ID pattern stay the file's. A project only REDCap knows is
 *   added with defaults (it sends to researchPacs).
 * - a routing row becomes rule `redcap:<record_id>`; it replaces a file rule of that name, every other
 *   file rule is kept.
 * - coupling rows go into the coupling registry (source "redcap") as if uploaded: new ones are applied
 *   at once to the studies in the quarantine list, and stay while REDCap lists them (plus expiryDays).
 * A site without REDCap (or without these tokens) keeps working from the file.
 * Per-project tokens (project_token) are not pulled: they would end up in Redis.
 */
import type { Redis } from "ioredis";
import { z } from "zod";
import {
  configSchema,
  projectSchema,
  type FionaConfig,
  type ProjectConfig,
  type RoutingRuleConfig,
} from "../config/schema.js";
import type { Logger } from "../log.js";
import { AutoIdRegistry } from "../registry/autoid.js";
import { CouplingRegistry } from "../registry/coupling.js";
import { createRoutingDeps, uploadCouplingList } from "../routing/apply.js";
import { parseCouplingCsv } from "../routing/coupling.js";
import type { TransferDeps } from "../transfer/start.js";
import type { RedcapClient, RedcapImportRow, RedcapRow } from "./client.js";
import { redcapToken } from "./client.js";

export const redcapTablesKey = (prefix: string) => `${prefix}:redcap:tables`;
export const autoIdPushedKey = (prefix: string, project: string) =>
  `${prefix}:redcap:autoid-pushed:${encodeURIComponent(project)}`;

const s = (v: unknown) => (v === undefined || v === null ? "" : String(v).trim());

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

export interface StoredTables {
  projects?: RedcapProjectRow[];
  rules?: RoutingRuleConfig[];
}

const ruleSchema = configSchema.shape.routing.removeDefault().shape.rules.removeDefault().element;

const issueText = (e: z.ZodError) =>
  e.issues.map((i) => `${i.path.join(".") || "row"}: ${i.message}`).join("; ");

/** DataTransferProjects rows into project overrides; invalid rows are skipped and logged. */
export function parseProjectRows(rows: readonly RedcapRow[], log: Logger): RedcapProjectRow[] {
  const out: RedcapProjectRow[] = [];
  for (const r of rows) {
    const recordId = s(r.record_id);
    const name = s(r.project_name) || recordId;
    const skip = (problem: string) =>
      log.warn({ table: "DataTransferProjects", recordId, problem }, "REDCap row skipped");
    if (!name) {
      skip("no project_name");
      continue;
    }
    const row: RedcapProjectRow = { recordId, name, active: s(r.project_active) !== "0" };
    const pattern = s(r.project_patient_naming);
    if (pattern) row.participantPattern = pattern;
    if ("project_features___0" in r) {
      const f = (c: string) => s(r[`project_features___${c}`]) === "1";
      row.features = {
        dropPresentationStates: f("0"),
        ...(f("2") ? { burnedIn: "drop" as const } : f("1") ? { burnedIn: "send" as const } : {}),
      };
    }
    const useAuto = s(r.project_use_autoid);
    if (useAuto === "0") row.autoId = false;
    else if (useAuto === "1") {
      const aeTitle = s(r.project_autoid_aetitle);
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
  const choices = s(meta[0]?.select_choices_or_calculations);
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
    const recordId = s(r.record_id);
    const code = s(r.routing_dest_project);
    const project = labels.get(code) ?? code;
    const opt = (k: string, v: string) => (v ? { [k]: v } : {});
    const parsed = ruleSchema.safeParse({
      name: `redcap:${recordId}`,
      active: s(r.routing_active) === "1",
      project,
      ...opt("calledAe", s(r.routing_incoming_aetitle)),
      ...opt("callingAe", s(r.routing_sending_aetitle)),
      ...opt("patientId", s(r.routing_allowed_patientid)),
      ...opt("patientName", s(r.routing_allowed_patientname)),
      ...opt("event", s(r.routing_event_name)),
    });
    if (!parsed.success) {
      log.warn({ table: "Routing", recordId, problem: issueText(parsed.error) }, "REDCap row skipped");
      continue;
    }
    out.push(parsed.data);
  }
  return out;
}

/** Merge the file's projects with the REDCap project rows (see the file comment). */
export function mergeProjects(
  file: readonly ProjectConfig[],
  rows: readonly RedcapProjectRow[] | undefined,
  log?: Logger,
): ProjectConfig[] {
  if (!rows) return file.map((p) => structuredClone(p));
  const out: ProjectConfig[] = [];
  const apply = (base: Record<string, unknown>, row: RedcapProjectRow, fileAutoPattern?: string) => {
    const merged: Record<string, unknown> = { ...base, name: row.name };
    if (row.participantPattern) merged.participantPattern = row.participantPattern;
    if (row.features) {
      const features = { ...((base.features as Record<string, unknown> | undefined) ?? {}) };
      features.dropPresentationStates = row.features.dropPresentationStates;
      features.burnedIn = row.features.burnedIn ?? "clean";
      merged.features = features;
    }
    if (row.autoId === false) delete merged.autoId;
    else if (row.autoId) {
      const pattern = fileAutoPattern ?? row.participantPattern ?? s(merged.participantPattern);
      merged.autoId = { aeTitle: row.autoId.aeTitle, pattern };
    }
    return projectSchema.safeParse(merged);
  };
  for (const p of file) {
    const row = rows.find((r) => r.name === p.name);
    if (!row) {
      out.push(structuredClone(p));
      continue;
    }
    if (!row.active) continue;
    const res = apply(structuredClone(p) as unknown as Record<string, unknown>, row, p.autoId?.pattern);
    if (res.success) out.push(res.data);
    else {
      log?.warn(
        { table: "DataTransferProjects", recordId: row.recordId, problem: issueText(res.error) },
        "REDCap row not applied; the file's project is kept",
      );
      out.push(structuredClone(p));
    }
  }
  for (const row of rows) {
    if (!row.active || file.some((p) => p.name === row.name)) continue;
    const res = apply({ name: row.name }, row);
    if (res.success) out.push(res.data);
    else
      log?.warn(
        { table: "DataTransferProjects", recordId: row.recordId, problem: issueText(res.error) },
        "REDCap row skipped",
      );
  }
  return out;
}

/** Merge the file's rules with REDCap's: a REDCap rule replaces a file rule of the same name. */
export function mergeRules(
  file: readonly RoutingRuleConfig[],
  rows: readonly RoutingRuleConfig[] | undefined,
): RoutingRuleConfig[] {
  if (!rows) return file.map((r) => structuredClone(r));
  const names = new Set(rows.map((r) => r.name));
  return [
    ...file.filter((r) => r.name === undefined || !names.has(r.name)).map((r) => structuredClone(r)),
    ...rows.map((r) => structuredClone(r)),
  ];
}

export async function readStoredTables(redis: Redis, prefix: string): Promise<StoredTables> {
  const h = await redis.hgetall(redcapTablesKey(prefix));
  const out: StoredTables = {};
  if (h.projects) out.projects = JSON.parse(h.projects) as RedcapProjectRow[];
  if (h.rules) out.rules = JSON.parse(h.rules) as RoutingRuleConfig[];
  return out;
}

const originals = new WeakMap<
  FionaConfig,
  { projects: readonly ProjectConfig[]; rules: readonly RoutingRuleConfig[] }
>();

const deepFreeze = <T>(o: T): T => {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
};

/**
 * Keeps `cfg.projects` and `cfg.routing.rules` of this process in step with the tables in Redis. The
 * file configuration is copied (frozen) the first time a cfg object is seen; refresh() rebuilds the
 * arrays from that copy plus the stored tables when these changed.
 */
export class ConfigRefresher {
  private last: string | undefined;
  private readonly original: { projects: readonly ProjectConfig[]; rules: readonly RoutingRuleConfig[] };
  constructor(
    private readonly cfg: FionaConfig,
    private readonly redis: Redis,
    private readonly log?: Logger,
  ) {
    let o = originals.get(cfg);
    if (!o) {
      o = deepFreeze({
        projects: structuredClone(cfg.projects),
        rules: structuredClone(cfg.routing.rules),
      });
      originals.set(cfg, o);
    }
    this.original = o;
  }

  /** Re-read the tables; returns whether the configuration changed. */
  async refresh(): Promise<boolean> {
    const h = await this.redis.hgetall(redcapTablesKey(this.cfg.redis.prefix));
    const sig = JSON.stringify([h.projects ?? null, h.rules ?? null]);
    if (sig === this.last) return false;
    const tables = await readStoredTables(this.redis, this.cfg.redis.prefix);
    this.cfg.projects = mergeProjects(this.original.projects, tables.projects, this.log);
    this.cfg.routing.rules = mergeRules(this.original.rules, tables.rules);
    const first = this.last === undefined;
    this.last = sig;
    if (!first || tables.projects || tables.rules)
      this.log?.info(
        { projects: this.cfg.projects.length, rules: this.cfg.routing.rules.length },
        "configuration merged with the REDCap tables",
      );
    return true;
  }
}

const csvCell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const COUPLING_HEADER = "AccessionNumber,StudyInstanceUID,ProjectName,subjectid,eventname";

/**
 * CouplingList rows into the coupling registry (source "redcap"): each row is validated alone (invalid
 * ones are logged by record id and skipped); rows not yet stored are uploaded like a CSV upload (and
 * applied to the quarantine list), rows already stored have their expiry refreshed.
 */
export async function applyCouplingRows(
  rows: readonly RedcapRow[],
  deps: TransferDeps & { redis: Redis; log: Logger },
): Promise<{ valid: number; added: number; skipped: number }> {
  const { cfg, log, redis } = deps;
  const fresh: string[] = [];
  const known = [];
  const coupling = new CouplingRegistry(redis, cfg.redis.prefix, { expiryDays: cfg.coupling.expiryDays });
  let skipped = 0;
  for (const r of rows) {
    const recordId = s(r.record_id);
    if (!s(r.cl_projectname)) continue; // the original ignores rows without a project
    const line = [
      r.cl_accessionnumber,
      r.cl_studyinstanceuid,
      r.cl_projectname,
      r.cl_subjectid,
      r.cl_eventname,
    ]
      .map((v) => csvCell(s(v)))
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
    if (await coupling.get(CouplingRegistry.rowId(row))) known.push(row);
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

/**
 * Write the participant IDs auto-ID issued to the AutoID table (project, ID, keyed hash; never the
 * PatientID). Rows already written are remembered in Redis; record_id is `<project>-<id>` so a repeat
 * after a lost answer overwrites the same record.
 */
export async function pushAutoIds(client: RedcapClient, redis: Redis, cfg: FionaConfig): Promise<number> {
  const registry = new AutoIdRegistry(redis, cfg.redis.prefix, cfg.secret);
  let n = 0;
  for (const p of cfg.projects.filter((x) => x.autoId)) {
    const map = await registry.mappings(p.name);
    const pushedKey = autoIdPushedKey(cfg.redis.prefix, p.name);
    const pushed = new Set(await redis.smembers(pushedKey));
    const rows: RedcapImportRow[] = Object.entries(map)
      .filter(([hash]) => !pushed.has(hash))
      .map(([hash, id]) => ({
        record_id: `${p.name}-${id}`,
        autoid_project_name: p.name,
        autoid_hash: hash,
        autoid_value: id,
        autoid_method: "1",
      }));
    for (let i = 0; i < rows.length; i += 100) {
      const batch = rows.slice(i, i + 100);
      await client.importRecords(batch);
      await redis.sadd(pushedKey, ...batch.map((r) => String(r.autoid_hash)));
      n += batch.length;
    }
  }
  return n;
}

/** Which REDCap tables this configuration pulls or writes (those with a token). */
export function configuredTables(cfg: FionaConfig) {
  const rc = cfg.redcap;
  const has = (n: string) => !!rc && !!redcapToken(rc, n);
  return {
    projects: has("dataTransferProjects"),
    routing: has("routing"),
    coupling: has("coupling"),
    autoId: has("autoId"),
  };
}

/**
 * The pull-tables job: pull each configured table, store the valid rows in Redis, apply coupling rows,
 * write new auto-IDs. A failing call leaves the previously stored tables in force.
 */
export async function syncTables(
  client: (name: string) => RedcapClient,
  deps: TransferDeps & { redis: Redis; log: Logger },
  refresh: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const { cfg, redis, log } = deps;
  const which = configuredTables(cfg);
  const key = redcapTablesKey(cfg.redis.prefix);
  const result: Record<string, number> = {};
  if (which.projects) {
    const rows = await client("dataTransferProjects").exportRecords({});
    const projects = parseProjectRows(rows, log);
    await redis.hset(key, "projects", JSON.stringify(projects));
    result.projects = projects.length;
  }
  if (which.routing) {
    const c = client("routing");
    const labels = await destProjectLabels(c);
    const rules = parseRoutingRows(await c.exportRecords({}), labels, log);
    await redis.hset(key, "rules", JSON.stringify(rules));
    result.rules = rules.length;
  }
  // Coupling validation and auto-ID use the merged projects.
  await refresh();
  if (which.coupling) {
    const r = await applyCouplingRows(await client("coupling").exportRecords({}), deps);
    result.couplingRows = r.valid;
    result.couplingAdded = r.added;
  }
  if (which.autoId && cfg.secret) result.autoIds = await pushAutoIds(client("autoId"), redis, cfg);
  return result;
}
