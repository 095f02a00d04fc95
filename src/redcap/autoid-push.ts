/** The participant IDs auto-ID issued, written to REDCap's AutoID table once each. */
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import { AutoIdRegistry } from "../registry/autoid.js";
import type { RedcapClient, RedcapImportRow } from "./client.js";

const autoIdPushedKey = (prefix: string, project: string) =>
  `${prefix}:redcap:autoid-pushed:${encodeURIComponent(project)}`;

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
