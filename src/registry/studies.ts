import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { z } from "zod";
import { identifierDigest } from "./identifier-key.js";
import { registryKeys } from "./keys.js";

/** One series as recorded when its study arrives (no patient data). */
export interface SeriesEntry {
  seriesInstanceUid: string;
  seriesNumber?: string;
  seriesDescription?: string;
  modality?: string;
  classifyType: string[];
  numFiles: number;
}

/**
 * A study in the incoming list: no patient data. Its accession number is kept only as a keyed digest
 * (./identifier-key.ts) to find the study by it (coupling lists, the list's accession filter); the
 * number itself, like the patient's name and ID, is read from the series JSON on disk when shown.
 */
export interface StudyEntry {
  studyInstanceUid: string;
  status: "receiving" | "arrived";
  firstSeenAt: string;
  lastSeenAt: string;
  callingAe?: string;
  calledAe?: string;
  peer?: string;
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  modalities: string[];
  arrivals: number;
  arrivedAt?: string;
  series: SeriesEntry[];
}

export interface StudyTouch {
  studyInstanceUid: string;
  callingAe: string;
  calledAe: string;
  peer: string;
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  /** First value wins, like the other study fields; stored as its keyed digest only. */
  accessionNumber?: string;
  modalities: string[];
}

export interface StudyRegistryOptions {
  /** list() shows a study for this many days after its last image; prune() removes it after that. */
  retentionDays?: number;
  /**
   * Key of the accession number digests (identifierKey), asked for when first needed: to record or find
   * accession numbers.
   */
  identifierKey?: () => Buffer;
}

const DAY_MS = 24 * 3600 * 1000;

/** Study hash field holding the accession number's keyed digest. */
const ACCESSION_FIELD = "accessionDigest";
/** Where entries written before that kept the number itself, indexed by its plain SHA-256. */
const LEGACY_ACCESSION_FIELD = "accessionNumber";
const legacyDigest = (accession: string) =>
  createHash("sha256").update(accession.trim()).digest("hex").slice(0, 32);

/** Remove one study if its last activity is still at or before the cutoff (a new image keeps it). */
const PRUNE_ONE = `
local s = redis.call("zscore", KEYS[1], ARGV[1])
if not s or tonumber(s) > tonumber(ARGV[2]) then return 0 end
redis.call("zrem", KEYS[1], ARGV[1])
redis.call("del", KEYS[2], KEYS[3])
redis.call("srem", KEYS[4], ARGV[1])
return 1`;

export class StudyRegistry {
  private readonly keys;
  private readonly prefix: string;
  private readonly identifierKey: (() => Buffer) | undefined;
  readonly retentionMs: number;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    opts: StudyRegistryOptions = {},
  ) {
    this.keys = registryKeys(prefix);
    this.prefix = prefix;
    this.retentionMs = (opts.retentionDays ?? 7) * DAY_MS;
    this.identifierKey = opts.identifierKey;
  }

  /** The keyed digest standing for an accession number. */
  private accessionDigest(accessionNumber: string): string {
    if (!this.identifierKey) throw new Error("StudyRegistry: accession numbers need the identifier key");
    return identifierDigest(this.identifierKey(), "accession", accessionNumber);
  }

  /** Set of study UIDs whose accession number has this digest. */
  private accessionKey(digest: string): string {
    return `${this.prefix}:registry:accession:${digest}`;
  }

  /** Record activity for a study: it appears with its first image; first values win. */
  async touch(t: StudyTouch, now = Date.now()): Promise<void> {
    const key = this.keys.study(t.studyInstanceUid);
    const firstWins: Array<[string, string | undefined]> = [
      ["studyInstanceUid", t.studyInstanceUid],
      ["firstSeenAt", new Date(now).toISOString()],
      ["callingAe", t.callingAe],
      ["calledAe", t.calledAe],
      ["peer", t.peer],
      ["studyDate", t.studyDate],
      ["studyTime", t.studyTime],
      ["studyDescription", t.studyDescription],
    ];
    const accession = t.accessionNumber?.trim();
    const digest = accession ? this.accessionDigest(accession) : undefined;
    if (digest) firstWins.push([ACCESSION_FIELD, digest]);
    const multi = this.redis.multi();
    for (const [field, value] of firstWins) if (value !== undefined) multi.hsetnx(key, field, value);
    multi.hset(key, "lastSeenMs", String(now), "status", "receiving");
    if (t.modalities.length) multi.sadd(`${key}:modalities`, ...t.modalities);
    multi.zadd(this.keys.studies, now, t.studyInstanceUid);
    if (digest) {
      // The index lives as long as the study stays listed; every image extends it.
      const idx = this.accessionKey(digest);
      multi.sadd(idx, t.studyInstanceUid).pexpire(idx, this.retentionMs + DAY_MS);
    }
    await multi.exec();
  }

  /** Milliseconds since the study's last image, or undefined for an unknown study. */
  async lastSeenMs(studyUid: string): Promise<number | undefined> {
    const v = await this.redis.hget(this.keys.study(studyUid), "lastSeenMs");
    return v === null ? undefined : Number(v);
  }

  /** Mark the study arrived with its series list; returns the arrival count (1 for the first). */
  async recordArrival(studyUid: string, series: SeriesEntry[], now = Date.now()): Promise<number> {
    const key = this.keys.study(studyUid);
    const res = await this.redis
      .multi()
      .hincrby(key, "arrivals", 1)
      .hset(
        key,
        "status",
        "arrived",
        "arrivedAt",
        new Date(now).toISOString(),
        "series",
        JSON.stringify(series),
      )
      .exec();
    return Number(res?.[0]?.[1] ?? 1);
  }

  async get(studyUid: string): Promise<StudyEntry | undefined> {
    const key = this.keys.study(studyUid);
    const [h, mods] = await Promise.all([this.redis.hgetall(key), this.redis.smembers(`${key}:modalities`)]);
    return h.studyInstanceUid ? toEntry(h, mods) : undefined;
  }

  /** Studies active within the retention period, most recently active first. */
  async list(limit = 1000, now = Date.now()): Promise<StudyEntry[]> {
    const uids = await this.redis.zrevrangebyscore(
      this.keys.studies,
      "+inf",
      now - this.retentionMs,
      "LIMIT",
      0,
      limit,
    );
    const entries = await Promise.all(uids.map((u) => this.get(u)));
    return entries.filter((e): e is StudyEntry => e !== undefined);
  }

  /** Listed studies matching the filter, most recently active first (scans at most `scan` studies). */
  async search(
    filter: StudyFilter,
    opts: { limit?: number; scan?: number; now?: number } = {},
  ): Promise<StudyEntry[]> {
    const all = await this.list(opts.scan ?? 10_000, opts.now);
    const accession = filter.accession?.trim()
      ? new Set(await this.uidsByAccession(filter.accession, opts.now))
      : undefined;
    return filterStudies(all, filter)
      .filter((e) => !accession || accession.has(e.studyInstanceUid))
      .slice(0, opts.limit ?? 1000);
  }

  /** UIDs of listed studies whose (first) accession number is exactly this one (trimmed). */
  async uidsByAccession(accessionNumber: string, now = Date.now()): Promise<string[]> {
    if (!accessionNumber.trim()) return [];
    const digest = this.accessionDigest(accessionNumber);
    const uids = await this.redis.smembers(this.accessionKey(digest));
    const found = await Promise.all(
      uids.map(async (u) => {
        const [own, seen] = await this.redis.hmget(this.keys.study(u), ACCESSION_FIELD, "lastSeenMs");
        return own === digest && Number(seen ?? 0) >= now - this.retentionMs ? u : undefined;
      }),
    );
    return found.filter((u): u is string => u !== undefined);
  }

  /** Listed studies whose (first) accession number is exactly this one (trimmed). */
  async findByAccession(accessionNumber: string, now = Date.now()): Promise<StudyEntry[]> {
    const entries = await Promise.all(
      (await this.uidsByAccession(accessionNumber, now)).map((u) => this.get(u)),
    );
    return entries.filter((e): e is StudyEntry => e !== undefined);
  }

  /**
   * Index every study again under the current key: entries written before accession numbers were kept
   * as keyed digests lose the number itself, entries digested with an earlier key get the new digest.
   * `accessionOf` reads a study's accession number from disk (for those without the number in Redis).
   * Returns how many studies were re-indexed.
   */
  async reindexAccessions(accessionOf: (studyUid: string) => Promise<string | undefined>): Promise<number> {
    let done = 0;
    for (let start = 0; ; start += 500) {
      const uids = await this.redis.zrange(this.keys.studies, start, start + 499);
      if (uids.length === 0) return done;
      for (const uid of uids) {
        const key = this.keys.study(uid);
        const [clear, old] = await this.redis.hmget(key, LEGACY_ACCESSION_FIELD, ACCESSION_FIELD);
        if (!clear && !old) continue;
        const accession = clear?.trim() || (await accessionOf(uid))?.trim();
        const digest = accession ? this.accessionDigest(accession) : undefined;
        if (digest === old && !clear) continue;
        const multi = this.redis.multi().hdel(key, LEGACY_ACCESSION_FIELD);
        if (clear) multi.srem(this.accessionKey(legacyDigest(clear)), uid);
        if (old && old !== digest) multi.srem(this.accessionKey(old), uid);
        if (digest) {
          const idx = this.accessionKey(digest);
          multi
            .hset(key, ACCESSION_FIELD, digest)
            .sadd(idx, uid)
            .pexpire(idx, this.retentionMs + DAY_MS);
        } else multi.hdel(key, ACCESSION_FIELD);
        await multi.exec();
        done++;
      }
    }
  }

  /** Whether the study is listed (known and active within the retention period). */
  async isListed(studyUid: string, now = Date.now()): Promise<boolean> {
    const score = await this.redis.zscore(this.keys.studies, studyUid);
    return score !== null && Number(score) >= now - this.retentionMs;
  }

  /** Remove one study from the list now (its files were deleted by the archive cleanup). */
  async remove(studyUid: string): Promise<boolean> {
    const key = this.keys.study(studyUid);
    const digest = (await this.redis.hget(key, ACCESSION_FIELD)) ?? "";
    const keys = [this.keys.studies, key, `${key}:modalities`, this.accessionKey(digest)];
    return (
      Number(await this.redis.eval(PRUNE_ONE, keys.length, ...keys, studyUid, Number.MAX_SAFE_INTEGER)) === 1
    );
  }

  /**
   * Remove studies whose last activity is older than the retention period from the registry (their
   * files stay on disk; a re-sent study appears again). Returns how many were removed.
   */
  async prune(now = Date.now()): Promise<number> {
    const cutoff = now - this.retentionMs - 1;
    let removed = 0;
    for (;;) {
      const uids = await this.redis.zrangebyscore(this.keys.studies, "-inf", cutoff, "LIMIT", 0, 500);
      if (uids.length === 0) return removed;
      for (const uid of uids) {
        const key = this.keys.study(uid);
        const digest = (await this.redis.hget(key, ACCESSION_FIELD)) ?? "";
        const keys = [this.keys.studies, key, `${key}:modalities`, this.accessionKey(digest)];
        removed += Number(await this.redis.eval(PRUNE_ONE, keys.length, ...keys, uid, cutoff));
      }
    }
  }
}

/** Filters of the incoming list; every given criterion must hold. Text matches are case-insensitive substrings. */
export interface StudyFilter {
  /** StudyDate from (inclusive), YYYYMMDD or YYYY-MM-DD. Studies without a StudyDate do not match a date range. */
  studyDateFrom?: string;
  /** StudyDate to (inclusive), YYYYMMDD or YYYY-MM-DD. */
  studyDateTo?: string;
  /** Last activity from (inclusive): ISO date/time or epoch ms. */
  seenFrom?: string | number;
  /** Last activity to (inclusive): ISO date/time or epoch ms; a bare date means the end of that day (UTC). */
  seenTo?: string | number;
  /** Accession number, exact: matched through the index (StudyRegistry.uidsByAccession), not here. */
  accession?: string;
  /** Study description or any series description. */
  description?: string;
  /** Calling or called AE title. */
  aeTitle?: string;
  status?: "receiving" | "arrived";
  /** One of the study's modalities (exact, case-insensitive). */
  modality?: string;
}

const dateText = z
  .string()
  .trim()
  .regex(/^\d{4}-?\d{2}-?\d{2}$/, "YYYYMMDD or YYYY-MM-DD");
const instant = z.union([z.number(), z.string().trim().min(1)]);

/** Parses a StudyFilter from query-string values (unknown keys are dropped, empty values ignored). */
export const studyFilterSchema = z.preprocess(
  (v) =>
    v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== "" && x !== undefined && x !== null))
      : v,
  z.object({
    studyDateFrom: dateText.optional(),
    studyDateTo: dateText.optional(),
    seenFrom: instant.optional(),
    seenTo: instant.optional(),
    accession: z.string().optional(),
    description: z.string().optional(),
    aeTitle: z.string().optional(),
    status: z.enum(["receiving", "arrived"]).optional(),
    modality: z.string().optional(),
  }),
) as z.ZodType<StudyFilter, z.ZodTypeDef, unknown>;

const compactDate = (d: string) => d.replace(/-/g, "");

function instantMs(v: string | number, endOfDay: boolean): number {
  if (typeof v === "number") return v;
  if (/^\d+$/.test(v) && v.length > 8) return Number(v);
  const day = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(v);
  if (day) {
    const start = Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]));
    return endOfDay ? start + DAY_MS - 1 : start;
  }
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new RangeError(`not a date or time: ${v}`);
  return ms;
}

const contains = (haystack: string | undefined, needle: string) =>
  haystack !== undefined && haystack.toLowerCase().includes(needle.toLowerCase());

/** Whether one study matches every criterion of the filter. */
export function matchesStudyFilter(e: StudyEntry, f: StudyFilter): boolean {
  if (f.studyDateFrom || f.studyDateTo) {
    const d = e.studyDate?.trim();
    if (!d || !/^\d{8}$/.test(d)) return false;
    if (f.studyDateFrom && d < compactDate(f.studyDateFrom)) return false;
    if (f.studyDateTo && d > compactDate(f.studyDateTo)) return false;
  }
  const seen = Date.parse(e.lastSeenAt);
  if (f.seenFrom !== undefined && seen < instantMs(f.seenFrom, false)) return false;
  if (f.seenTo !== undefined && seen > instantMs(f.seenTo, true)) return false;
  if (f.description) {
    const q = f.description.trim();
    if (!contains(e.studyDescription, q) && !e.series.some((s) => contains(s.seriesDescription, q)))
      return false;
  }
  if (f.aeTitle) {
    const q = f.aeTitle.trim();
    if (!contains(e.callingAe, q) && !contains(e.calledAe, q)) return false;
  }
  if (f.status && e.status !== f.status) return false;
  if (f.modality && !e.modalities.some((m) => m.toLowerCase() === f.modality!.trim().toLowerCase()))
    return false;
  return true;
}

export function filterStudies(entries: readonly StudyEntry[], f: StudyFilter): StudyEntry[] {
  return entries.filter((e) => matchesStudyFilter(e, f));
}

function toEntry(h: Record<string, string>, modalities: string[]): StudyEntry {
  const lastSeen = Number(h.lastSeenMs ?? 0);
  return {
    studyInstanceUid: h.studyInstanceUid!,
    status: h.status === "arrived" ? "arrived" : "receiving",
    firstSeenAt: h.firstSeenAt ?? new Date(lastSeen).toISOString(),
    lastSeenAt: new Date(lastSeen).toISOString(),
    callingAe: h.callingAe,
    calledAe: h.calledAe,
    peer: h.peer,
    studyDate: h.studyDate,
    studyTime: h.studyTime,
    studyDescription: h.studyDescription,
    modalities: modalities.sort(),
    arrivals: Number(h.arrivals ?? 0),
    arrivedAt: h.arrivedAt,
    series: h.series ? (JSON.parse(h.series) as SeriesEntry[]) : [],
  };
}
