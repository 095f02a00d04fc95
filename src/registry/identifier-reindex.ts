/**
 * At worker start: bring the accession number indexes (incoming list, coupling lists) to the current
 * identifier key. Registries written before accession numbers were kept as keyed digests lose the
 * numbers themselves; after a change of key (a new site secret) the studies are indexed again from
 * their series JSON. The key's id in Redis says which key the indexes are under, so this runs once
 * per key and site (under a lock, whichever worker comes first), not at every start.
 */
import type { Redis } from "ioredis";
import { readStudySummaries } from "../ingest/study-summaries.js";
import type { Logger } from "../log.js";
import type { SitePaths } from "../paths.js";
import type { CouplingRegistry } from "./coupling.js";
import { identifierKeyId } from "./identifier-key.js";
import { withLock } from "./lock.js";
import type { StudyRegistry } from "./studies.js";

export interface ReindexDeps {
  redis: Redis;
  prefix: string;
  paths: SitePaths;
  identifierKey: () => Buffer;
  studies: StudyRegistry;
  coupling: CouplingRegistry;
  log: Logger;
}

/** The study's accession number, from its first series JSON that has one. */
async function accessionOnDisk(paths: SitePaths, studyUid: string): Promise<string | undefined> {
  for (const { summary } of await readStudySummaries(paths, studyUid)) {
    const acc = summary.AccessionNumber;
    if (typeof acc === "string" && acc.trim()) return acc.trim();
  }
  return undefined;
}

export async function reindexIdentifiers(deps: ReindexDeps): Promise<void> {
  const { redis, prefix, log } = deps;
  const idKey = `${prefix}:registry:identifier-key-id`;
  const id = identifierKeyId(deps.identifierKey());
  if ((await redis.get(idKey)) === id) return;
  await withLock(
    redis,
    `${prefix}:lock:identifier-reindex`,
    async () => {
      if ((await redis.get(idKey)) === id) return;
      const studies = await deps.studies.reindexAccessions((uid) => accessionOnDisk(deps.paths, uid));
      const rows = await deps.coupling.reindex();
      await redis.set(idKey, id);
      log.info(
        { event: "identifier-reindex", studies, couplingRows: rows.rekeyed },
        "accession number indexes brought to the current identifier key",
      );
      if (rows.lost)
        log.warn(
          { event: "identifier-reindex-lost", couplingRows: rows.lost },
          "coupling rows stored under an earlier identifier key no longer match by accession number; upload them again",
        );
    },
    { ttlMs: 60_000, waitMs: 30 * 60_000, renew: true },
  );
}
