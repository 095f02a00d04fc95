import { createHash, randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { CouplingRegistry } from "../../src/registry/coupling.js";
import {
  filterStudies,
  StudyRegistry,
  studyFilterSchema,
  type StudyEntry,
  type StudyTouch,
} from "../../src/registry/studies.js";
import { cleanup, testConfig } from "../support/env.js";

const DAY = 24 * 3600 * 1000;
const key = randomBytes(32);
const identifierKey = () => key;
const T0 = Date.UTC(2025, 0, 20, 12);
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

const touch = (uid: string, extra: Partial<StudyTouch> = {}): StudyTouch => ({
  studyInstanceUid: uid,
  callingAe: "SCANNER1",
  calledAe: "FIONA",
  peer: "127.0.0.1",
  modalities: ["MR"],
  ...extra,
});

describe("incoming list", () => {
  it("finds studies by accession number (first value wins) while keeping only its keyed digest", async () => {
    const reg = new StudyRegistry(redis, `${cfg.redis.prefix}:a`, { retentionDays: 7, identifierKey });
    await reg.touch(touch("1.1", { accessionNumber: " ACC100 " }), T0);
    await reg.touch(touch("1.1", { accessionNumber: "OTHER" }), T0 + 1000);
    await reg.touch(touch("1.2", { accessionNumber: "ACC100" }), T0);
    await reg.touch(touch("1.3"), T0);
    const found = await reg.findByAccession("ACC100", T0 + 2000);
    expect(found.map((s) => s.studyInstanceUid).sort()).toEqual(["1.1", "1.2"]);
    expect(await reg.findByAccession("OTHER", T0 + 2000)).toEqual([]);
    expect(await reg.findByAccession("", T0)).toEqual([]);
    // Neither the number nor its plain hash is in Redis; another key finds nothing.
    const keys = await redis.keys(`${cfg.redis.prefix}:a:*`);
    const hashes = await Promise.all(
      keys.filter((k) => /:study:[^:]+$/.test(k)).map((k) => redis.hgetall(k)),
    );
    const text = keys.join("\n") + JSON.stringify(hashes);
    const plain = createHash("sha256").update("ACC100").digest("hex");
    expect(text).not.toContain("ACC100");
    expect(text).not.toContain(plain.slice(0, 32));
    const otherKey = randomBytes(32);
    const withOtherKey = new StudyRegistry(redis, `${cfg.redis.prefix}:a`, { identifierKey: () => otherKey });
    expect(await withOtherKey.findByAccession("ACC100", T0)).toEqual([]);
    // Without the key, accession numbers are refused rather than stored some other way.
    await expect(
      new StudyRegistry(redis, `${cfg.redis.prefix}:a`).touch(touch("1.4", { accessionNumber: "X" }), T0),
    ).rejects.toThrow(/identifier key/);
  });

  it("hides studies older than the retention period and prunes them from Redis", async () => {
    const prefix = `${cfg.redis.prefix}:r`;
    const reg = new StudyRegistry(redis, prefix, { retentionDays: 7, identifierKey });
    await reg.touch(touch("2.1", { accessionNumber: "OLD" }), T0 - 8 * DAY);
    await reg.touch(touch("2.2", { accessionNumber: "EDGE" }), T0 - 7 * DAY);
    await reg.touch(touch("2.3", { accessionNumber: "NEW" }), T0 - DAY);
    expect((await reg.list(1000, T0)).map((s) => s.studyInstanceUid)).toEqual(["2.3", "2.2"]);
    expect(await reg.isListed("2.1", T0)).toBe(false);
    expect(await reg.findByAccession("OLD", T0)).toEqual([]);
    // get() still answers for a hidden study until it is pruned.
    expect(await reg.get("2.1")).toBeDefined();

    expect(await reg.prune(T0)).toBe(1);
    expect(await reg.get("2.1")).toBeUndefined();
    expect(await redis.exists(`${prefix}:registry:study:2.1:modalities`)).toBe(0);
    expect(await reg.prune(T0)).toBe(0);
    expect((await reg.list(1000, T0)).map((s) => s.studyInstanceUid)).toEqual(["2.3", "2.2"]);
    // A day later the edge study goes too; a re-sent study comes back.
    expect(await reg.prune(T0 + DAY)).toBe(1);
    await reg.touch(touch("2.1", { accessionNumber: "OLD" }), T0 + DAY);
    expect((await reg.findByAccession("OLD", T0 + DAY)).map((s) => s.studyInstanceUid)).toEqual(["2.1"]);
  });

  it("keeps the existing API working with the default retention of 7 days", async () => {
    const reg = new StudyRegistry(redis, `${cfg.redis.prefix}:d`);
    const now = Date.now();
    await reg.touch(touch("3.1"), now - 6 * DAY);
    await reg.touch(touch("3.2"), now - 8 * DAY);
    expect((await reg.list()).map((s) => s.studyInstanceUid)).toEqual(["3.1"]);
    expect(await reg.recordArrival("3.1", [])).toBe(1);
    expect((await reg.get("3.1"))?.status).toBe("arrived");
  });

  it("searches with filters", async () => {
    const reg = new StudyRegistry(redis, `${cfg.redis.prefix}:s`, { retentionDays: 30, identifierKey });
    await reg.touch(
      touch("4.1", { accessionNumber: "RH123", studyDate: "20250110", studyDescription: "MR Brain" }),
      T0,
    );
    await reg.touch(
      touch("4.2", {
        accessionNumber: "RH456",
        studyDate: "20250115",
        studyDescription: "CT Thorax",
        calledAe: "PROJAUTO",
      }),
      T0 - 3 * DAY,
    );
    await reg.recordArrival("4.2", [
      { seriesInstanceUid: "4.2.1", seriesDescription: "Lung kernel", classifyType: [], numFiles: 1 },
    ]);
    const uids = async (f: object) =>
      (await reg.search(studyFilterSchema.parse(f), { now: T0 })).map((s) => s.studyInstanceUid);
    expect(await uids({})).toEqual(["4.1", "4.2"]);
    expect(await uids({ accession: "RH456" })).toEqual(["4.2"]);
    // Exact only: the registry cannot look inside a digest.
    expect(await uids({ accession: "rh4" })).toEqual([]);
    expect(await uids({ description: "brain" })).toEqual(["4.1"]);
    expect(await uids({ description: "LUNG" })).toEqual(["4.2"]);
    expect(await uids({ aeTitle: "auto" })).toEqual(["4.2"]);
    expect(await uids({ aeTitle: "scanner" })).toEqual(["4.1", "4.2"]);
    expect(await uids({ studyDateFrom: "2025-01-12" })).toEqual(["4.2"]);
    expect(await uids({ studyDateTo: "20250112", accession: "" })).toEqual(["4.1"]);
    expect(await uids({ seenFrom: "2025-01-19" })).toEqual(["4.1"]);
    expect(await uids({ seenTo: "2025-01-17" })).toEqual(["4.2"]);
    expect(await uids({ seenTo: String(T0 - DAY) })).toEqual(["4.2"]);
    expect(await uids({ status: "arrived" })).toEqual(["4.2"]);
    expect(await uids({ modality: "mr" })).toEqual(["4.1", "4.2"]);
    expect(() => studyFilterSchema.parse({ studyDateFrom: "last week" })).toThrow();
  });

  it("filters plain entries (for callers that already hold a list)", () => {
    const e = (uid: string, studyDate?: string): StudyEntry => ({
      studyInstanceUid: uid,
      status: "arrived",
      firstSeenAt: new Date(T0).toISOString(),
      lastSeenAt: new Date(T0).toISOString(),
      modalities: [],
      arrivals: 1,
      series: [],
      ...(studyDate ? { studyDate } : {}),
    });
    expect(
      filterStudies([e("a", "20250101"), e("b")], { studyDateFrom: "20240101" }).map(
        (x) => x.studyInstanceUid,
      ),
    ).toEqual(["a"]);
  });
});

describe("coupling rows in Redis", () => {
  it("stores rows with an expiry, finds them by accession or UID, refreshes on re-upload", async () => {
    const reg = new CouplingRegistry(redis, `${cfg.redis.prefix}:c`, { expiryDays: 30, identifierKey });
    const now = Date.now();
    const rows = [
      { line: 2, accessionNumber: "ACC1", project: "P", participant: "P1" },
      { line: 3, accessionNumber: "ACC1", project: "Q", participant: "Q1", event: "baseline" },
      { line: 4, studyInstanceUid: "1.2.3", project: "P", participant: "P2" },
    ];
    const stored = await reg.add(rows, "alice", now);
    expect(stored.map((s) => s.uploadedBy)).toEqual(["alice", "alice", "alice"]);
    const forStudy = await reg.forStudy("9.9", ["ACC1"], now);
    expect(forStudy.map((r) => r.participant).sort()).toEqual(["P1", "Q1"]);
    expect((await reg.forStudy("1.2.3", [], now)).map((r) => r.participant)).toEqual(["P2"]);
    expect(await reg.forStudy("1.2.4", ["ACC2"], now)).toEqual([]);
    expect(await reg.list(100, now)).toHaveLength(3);
    // Stored rows hold the accession number's digest, not the number.
    expect(JSON.stringify(await reg.list(100, now))).not.toContain("ACC1");
    const ttl = await redis.pttl(`${cfg.redis.prefix}:c:routing:coupling:row:${stored[0]!.id}`);
    expect(ttl).toBeGreaterThan(29 * DAY);
    // Past the expiry the rows are gone (simulated clock for the listing, real expiry for the keys).
    expect(await reg.forStudy("9.9", ["ACC1"], now + 31 * DAY)).toEqual([]);
    expect(await reg.prune(now + 31 * DAY)).toBe(3);
    // Re-uploading the same row gives the same id.
    const again = await reg.add([rows[0]!], "bob", now);
    expect(again[0]!.id).toBe(stored[0]!.id);
    expect(await reg.remove(again[0]!.id)).toBe(true);
    expect(await reg.forStudy("9.9", ["ACC1"], now)).toHaveLength(1);
  });
});
