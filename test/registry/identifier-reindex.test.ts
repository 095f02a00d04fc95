/**
 * The identifier key and the re-indexing at worker start: a site without a secret gets a random key
 * in a 0600 file, kept across processes; registries written before accession numbers were digested
 * lose the numbers at the next worker start and still match; a new key re-indexes the studies from
 * their series JSON.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { SitePaths } from "../../src/paths.js";
import { QUEUES } from "../../src/queues/index.js";
import { CouplingRegistry } from "../../src/registry/coupling.js";
import { IDENTIFIER_KEY_FILE, identifierKey } from "../../src/registry/identifier-key.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { startWorkers } from "../../src/roles/workers.js";
import { cleanup, testConfig } from "../support/env.js";

const logLines: string[] = [];
const log = pino(
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);
const reindexed = () => logLines.filter((l) => l.includes('"event":"identifier-reindex"')).length;
const STUDY = "1.2.826.0.1.3680043.10.99.1";
const ACC = "ACC-LEGACY-1";
const plain = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 32);
let cfg: FionaConfig;
let redis: Redis;

beforeAll(() => {
  cfg = testConfig();
  redis = new Redis(cfg.redis.url);
});
afterAll(async () => {
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

const registries = (c: FionaConfig) => ({
  studies: new StudyRegistry(redis, c.redis.prefix, { identifierKey: () => identifierKey(c) }),
  coupling: new CouplingRegistry(redis, c.redis.prefix, { identifierKey: () => identifierKey(c) }),
});

/** What an earlier version stored: the number in the study hash and in the coupling row, plain hashes as index. */
async function plantLegacyEntries(prefix: string): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .hset(`${prefix}:registry:study:${STUDY}`, {
      studyInstanceUid: STUDY,
      accessionNumber: ACC,
      lastSeenMs: String(now),
      status: "arrived",
    })
    .zadd(`${prefix}:registry:studies`, now, STUDY)
    .sadd(`${prefix}:registry:accession:${plain(ACC)}`, STUDY)
    .set(
      `${prefix}:routing:coupling:row:oldrowid`,
      JSON.stringify({
        id: "oldrowid",
        accessionNumber: ACC,
        project: "PROJ",
        participant: "PROJ_0001",
        uploadedBy: "alice",
        uploadedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 86_400_000).toISOString(),
      }),
      "PX",
      86_400_000,
    )
    .zadd(`${prefix}:routing:coupling:rows`, now + 86_400_000, "oldrowid")
    .sadd(`${prefix}:routing:coupling:acc:${plain(ACC)}`, "oldrowid")
    .exec();
  // The series JSON on disk, where the number stays.
  const paths = new SitePaths(cfg.dataDir);
  mkdirSync(paths.rawStudyDir(STUDY), { recursive: true });
  writeFileSync(
    paths.seriesJson(STUDY, `${STUDY}.1`),
    JSON.stringify({ AccessionNumber: ACC, NumFiles: "1" }),
  );
}

async function keysAndValues(prefix: string): Promise<string> {
  const keys = await redis.keys(`${prefix}:*`);
  const values = await Promise.all(
    keys.map(async (k) => {
      const type = await redis.type(k);
      if (type === "hash") return JSON.stringify(await redis.hgetall(k));
      if (type === "set") return JSON.stringify(await redis.smembers(k));
      if (type === "string") return (await redis.get(k)) ?? "";
      return "";
    }),
  );
  return [...keys, ...values].join("\n");
}

describe("the identifier key", () => {
  it("is derived from the site secret when there is one, else kept in a 0600 file", () => {
    const withSecret = identifierKey({ secret: "a-site-secret-0123456789", dataDir: cfg.dataDir });
    expect(withSecret).toHaveLength(32);
    expect(identifierKey({ secret: "another-secret-0123456789", dataDir: cfg.dataDir })).not.toEqual(
      withSecret,
    );
    const key = identifierKey(cfg);
    const file = path.join(cfg.dataDir, IDENTIFIER_KEY_FILE);
    expect(readFileSync(file, "utf8").trim()).toBe(key.toString("hex"));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(key).not.toEqual(withSecret);
  });

  it("refuses a damaged key file rather than making up another key", () => {
    const dataDir = path.join(cfg.dataDir, "damaged");
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, IDENTIFIER_KEY_FILE), "not a key\n");
    expect(() => identifierKey({ dataDir })).toThrow(/does not hold an identifier key/);
  });
});

describe("re-indexing at worker start", () => {
  it("drops accession numbers an earlier version kept, and the entries still match", async () => {
    const prefix = cfg.redis.prefix;
    await plantLegacyEntries(prefix);
    const workers = await startWorkers(cfg, log, [QUEUES.arrival]);
    await workers.close();

    const all = await keysAndValues(prefix);
    expect(all).not.toContain(ACC);
    expect(all).not.toContain(plain(ACC));
    const { studies, coupling } = registries(cfg);
    expect((await studies.findByAccession(ACC)).map((s) => s.studyInstanceUid)).toEqual([STUDY]);
    const rows = await coupling.forStudy("9.9.9", [ACC]);
    expect(rows.map((r) => r.participant)).toEqual(["PROJ_0001"]);
    expect(rows[0]!.id).not.toBe("oldrowid");
    expect(await redis.pttl(`${prefix}:routing:coupling:row:${rows[0]!.id}`)).toBeGreaterThan(0);
  });

  it("indexes the studies again, from disk, under a new key", async () => {
    const moved = { ...cfg, secret: "a-new-site-secret-0123456789" };
    const workers = await startWorkers(moved, log, [QUEUES.arrival]);
    await workers.close();
    expect((await registries(moved).studies.findByAccession(ACC)).map((s) => s.studyInstanceUid)).toEqual([
      STUDY,
    ]);
    expect(await registries(cfg).studies.findByAccession(ACC)).toEqual([]);
    // A coupling row keeps no number to digest again: it matches no more (and is logged as lost).
    expect(await registries(moved).coupling.forStudy("9.9.9", [ACC])).toEqual([]);
    expect(logLines.some((l) => l.includes('"event":"identifier-reindex-lost"'))).toBe(true);
    // Once per key: the next start finds the indexes current.
    expect(reindexed()).toBe(2);
    const again = await startWorkers(moved, log, [QUEUES.arrival]);
    await again.close();
    expect(reindexed()).toBe(2);
  });
});
