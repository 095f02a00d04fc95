/**
 * The valid table rows as stored in Redis, and their merge with the configuration file into the
 * `cfg.projects` and `cfg.routing.rules` of every worker process (see tables.ts for the rules).
 */
import type { Redis } from "ioredis";
import type { FionaConfig, ProjectConfig, RoutingRuleConfig } from "../config/schema.js";
import { projectSchema } from "../config/schema.js";
import type { Logger } from "../log.js";
import { cellText } from "./client.js";
import { issueText, type RedcapProjectRow } from "./table-rows.js";

export const redcapTablesKey = (prefix: string) => `${prefix}:redcap:tables`;

export interface StoredTables {
  projects?: RedcapProjectRow[];
  rules?: RoutingRuleConfig[];
}

/** Merge the file's projects with the REDCap project rows (see the comment of tables.ts). */
function mergeProjects(
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
      const pattern = fileAutoPattern ?? row.participantPattern ?? cellText(merged.participantPattern);
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
function mergeRules(
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

async function readStoredTables(redis: Redis, prefix: string): Promise<StoredTables> {
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
