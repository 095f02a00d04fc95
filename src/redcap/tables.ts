/**
 * The job that pulls the configuration tables from REDCap (DataTransferProjects, Routing, CouplingList)
 * and writes the AutoID table back; the rows are read in table-rows.ts, merged in config-merge.ts.
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
 *   at once to the studies in the incoming list, and stay while REDCap lists them (plus expiryDays).
 * A site without REDCap (or without these tokens) keeps working from the file.
 * Per-project tokens (project_token) are not pulled: they would end up in Redis.
 */
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { TransferDeps } from "../transfer/start.js";
import { pushAutoIds } from "./autoid-push.js";
import { redcapToken, type RedcapClient } from "./client.js";
import { redcapTablesKey } from "./config-merge.js";
import { applyCouplingRows } from "./coupling-rows.js";
import { destProjectLabels, parseProjectRows, parseRoutingRows } from "./table-rows.js";

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
