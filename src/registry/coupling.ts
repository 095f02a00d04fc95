import { createHash, createHmac } from "node:crypto";
import type { Redis } from "ioredis";
import type { CouplingRow } from "../routing/coupling.js";
import { identifierDigest } from "./identifier-key.js";

/**
 * A coupling-list row as stored. It holds the keyed digest of an accession number (./identifier-key.ts),
 * never the number, or a StudyInstanceUID, and the pseudonymous participant: no patient data.
 */
export interface StoredCouplingRow {
  id: string;
  accessionDigest?: string;
  studyInstanceUid?: string;
  project: string;
  participant: string;
  event?: string;
  uploadedBy: string;
  uploadedAt: string;
  expiresAt: string;
}

export interface CouplingRegistryOptions {
  /** Rows expire this many days after their (latest) upload. */
  expiryDays?: number;
  /** Key of the accession number digests and row ids (identifierKey), asked for when first needed. */
  identifierKey?: () => Buffer;
}

type RowContent = Pick<
  CouplingRow,
  "accessionNumber" | "studyInstanceUid" | "project" | "participant" | "event"
>;

/** A row as stored before accession numbers were kept as keyed digests. */
type LegacyRow = StoredCouplingRow & { accessionNumber?: string };

const DAY_MS = 24 * 3600 * 1000;
const legacyDigest = (s: string) => createHash("sha256").update(s.trim()).digest("hex").slice(0, 32);

/**
 * Uploaded coupling-list rows in Redis, each with an expiry. Uploading the same row again refreshes it
 * (the row id is derived from its content). Rows are found by accession number or StudyInstanceUID.
 */
export class CouplingRegistry {
  readonly expiryMs: number;
  private readonly base: string;
  private readonly identifierKey: (() => Buffer) | undefined;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    opts: CouplingRegistryOptions = {},
  ) {
    this.expiryMs = (opts.expiryDays ?? 30) * DAY_MS;
    this.base = `${prefix}:routing:coupling`;
    this.identifierKey = opts.identifierKey;
  }

  private rowKey = (id: string) => `${this.base}:row:${id}`;
  private get allKey() {
    return `${this.base}:rows`;
  }
  /** Index by accession number, under its digest. */
  private accessionKey = (digest: string) => `${this.base}:acc:${digest}`;
  private studyKey = (uid: string) => `${this.base}:study:${uid}`;

  private key(): Buffer {
    if (!this.identifierKey) throw new Error("CouplingRegistry: rows need the identifier key");
    return this.identifierKey();
  }

  private accessionDigest(accessionNumber: string): string {
    return identifierDigest(this.key(), "accession", accessionNumber);
  }

  /** A row's id, from its content: keyed, since the content includes the accession number. */
  rowId(r: RowContent): string {
    return createHmac("sha256", this.key())
      .update(
        [
          "coupling row",
          r.accessionNumber ?? "",
          r.studyInstanceUid ?? "",
          r.project,
          r.participant,
          r.event ?? "",
        ].join("\0"),
      )
      .digest("hex")
      .slice(0, 24);
  }

  /** Store rows (validated by parseCouplingCsv); returns them as stored. */
  async add(
    rows: readonly CouplingRow[],
    uploadedBy: string,
    now = Date.now(),
  ): Promise<StoredCouplingRow[]> {
    const expires = now + this.expiryMs;
    const stored: StoredCouplingRow[] = rows.map((r) => ({
      id: this.rowId(r),
      ...(r.accessionNumber !== undefined
        ? { accessionDigest: this.accessionDigest(r.accessionNumber) }
        : {}),
      ...(r.studyInstanceUid !== undefined ? { studyInstanceUid: r.studyInstanceUid } : {}),
      project: r.project,
      participant: r.participant,
      ...(r.event !== undefined ? { event: r.event } : {}),
      uploadedBy,
      uploadedAt: new Date(now).toISOString(),
      expiresAt: new Date(expires).toISOString(),
    }));
    for (let i = 0; i < stored.length; i += 500) {
      const multi = this.redis.multi();
      for (const s of stored.slice(i, i + 500)) {
        multi.set(this.rowKey(s.id), JSON.stringify(s), "PX", this.expiryMs);
        multi.zadd(this.allKey, expires, s.id);
        const indexes = [
          ...(s.accessionDigest ? [this.accessionKey(s.accessionDigest)] : []),
          ...(s.studyInstanceUid ? [this.studyKey(s.studyInstanceUid)] : []),
        ];
        for (const idx of indexes) multi.sadd(idx, s.id).pexpire(idx, this.expiryMs);
      }
      await multi.exec();
    }
    return stored;
  }

  /** Unexpired rows for a study: those naming its UID or one of its accession numbers. */
  async forStudy(
    studyInstanceUid: string,
    accessionNumbers: readonly string[],
    now = Date.now(),
  ): Promise<StoredCouplingRow[]> {
    const accs = [...new Set(accessionNumbers.map((a) => a.trim()).filter((a) => a !== ""))];
    const digests = accs.map((a) => this.accessionDigest(a));
    const ids = await this.redis.sunion(
      this.studyKey(studyInstanceUid),
      ...digests.map((d) => this.accessionKey(d)),
    );
    const rows = await this.getMany(ids, now);
    return rows
      .filter(
        (r) =>
          r.studyInstanceUid === studyInstanceUid ||
          (r.accessionDigest !== undefined && digests.includes(r.accessionDigest)),
      )
      .sort((a, b) => b.uploadedAt.localeCompare(a.uploadedAt) || a.id.localeCompare(b.id));
  }

  /** Unexpired rows, the most recently uploaded first. */
  async list(limit = 10_000, now = Date.now()): Promise<StoredCouplingRow[]> {
    const ids = await this.redis.zrevrangebyscore(this.allKey, "+inf", now + 1, "LIMIT", 0, limit);
    return this.getMany(ids, now);
  }

  async get(id: string, now = Date.now()): Promise<StoredCouplingRow | undefined> {
    return (await this.getMany([id], now))[0];
  }

  /** Delete one row (e.g. a mistake in an upload); true when it existed. */
  async remove(id: string): Promise<boolean> {
    const row = await this.get(id);
    const multi = this.redis.multi().del(this.rowKey(id)).zrem(this.allKey, id);
    if (row?.accessionDigest) multi.srem(this.accessionKey(row.accessionDigest), id);
    if (row?.studyInstanceUid) multi.srem(this.studyKey(row.studyInstanceUid), id);
    const res = await multi.exec();
    return Number(res?.[0]?.[1] ?? 0) > 0;
  }

  /**
   * Store every row again under the current key: a row that still holds its accession number keeps
   * only the digest, and every row gets its keyed id. Rows digested with an earlier key cannot be
   * matched again (the number is gone): they are counted as `lost` and left to expire.
   */
  async reindex(): Promise<{ rekeyed: number; lost: number }> {
    let rekeyed = 0;
    let lost = 0;
    const ids = await this.redis.zrange(this.allKey, 0, -1);
    for (const id of ids) {
      const [raw, ttl, score] = await Promise.all([
        this.redis.get(this.rowKey(id)),
        this.redis.pttl(this.rowKey(id)),
        this.redis.zscore(this.allKey, id),
      ]);
      if (!raw || ttl <= 0 || score === null) continue;
      const { accessionNumber: clear, ...row } = JSON.parse(raw) as LegacyRow;
      if (clear === undefined && row.accessionDigest !== undefined) {
        lost++;
        continue;
      }
      const next: StoredCouplingRow = {
        ...row,
        id: this.rowId({ ...row, ...(clear !== undefined ? { accessionNumber: clear } : {}) }),
        ...(clear !== undefined ? { accessionDigest: this.accessionDigest(clear) } : {}),
      };
      if (next.id === id && clear === undefined) continue;
      const multi = this.redis
        .multi()
        .del(this.rowKey(id))
        .zrem(this.allKey, id)
        .set(this.rowKey(next.id), JSON.stringify(next), "PX", ttl)
        .zadd(this.allKey, score, next.id);
      if (clear !== undefined) multi.srem(this.accessionKey(legacyDigest(clear)), id);
      if (row.studyInstanceUid) multi.srem(this.studyKey(row.studyInstanceUid), id);
      const indexes = [
        ...(next.accessionDigest ? [this.accessionKey(next.accessionDigest)] : []),
        ...(next.studyInstanceUid ? [this.studyKey(next.studyInstanceUid)] : []),
      ];
      for (const idx of indexes) multi.sadd(idx, next.id).pexpire(idx, this.expiryMs);
      await multi.exec();
      rekeyed++;
    }
    return { rekeyed, lost };
  }

  /** Forget expired rows in the listing (the rows themselves expire in Redis). Returns how many. */
  async prune(now = Date.now()): Promise<number> {
    return this.redis.zremrangebyscore(this.allKey, "-inf", now);
  }

  private async getMany(ids: readonly string[], now: number): Promise<StoredCouplingRow[]> {
    if (ids.length === 0) return [];
    const values = await this.redis.mget(...ids.map(this.rowKey));
    return values
      .filter((v): v is string => v !== null)
      .map((v) => JSON.parse(v) as StoredCouplingRow)
      .filter((r) => Date.parse(r.expiresAt) > now);
  }
}
