import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { CouplingRow } from "../routing/coupling.js";

/**
 * A coupling-list row as stored. It holds an accession number (or StudyInstanceUID) and the
 * pseudonymous participant: no patient name, ID or birth date.
 */
export interface StoredCouplingRow {
  id: string;
  accessionNumber?: string;
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
}

const DAY_MS = 24 * 3600 * 1000;
const digest = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 32);

/**
 * Uploaded coupling-list rows in Redis, each with an expiry. Uploading the same row again refreshes it
 * (the row id is derived from its content). Rows are found by accession number or StudyInstanceUID.
 */
export class CouplingRegistry {
  readonly expiryMs: number;
  private readonly base: string;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    opts: CouplingRegistryOptions = {},
  ) {
    this.expiryMs = (opts.expiryDays ?? 30) * DAY_MS;
    this.base = `${prefix}:routing:coupling`;
  }

  private rowKey = (id: string) => `${this.base}:row:${id}`;
  private get allKey() {
    return `${this.base}:rows`;
  }
  /** Index by accession number: the key holds a digest, not the number. */
  private accessionKey = (acc: string) => `${this.base}:acc:${digest(acc.trim())}`;
  private studyKey = (uid: string) => `${this.base}:study:${uid}`;

  static rowId(
    r: Pick<CouplingRow, "accessionNumber" | "studyInstanceUid" | "project" | "participant" | "event">,
  ) {
    return digest(
      [r.accessionNumber ?? "", r.studyInstanceUid ?? "", r.project, r.participant, r.event ?? ""].join("\0"),
    ).slice(0, 24);
  }

  /** Store rows (validated by parseCouplingCsv); returns them as stored. */
  async add(
    rows: readonly CouplingRow[],
    uploadedBy: string,
    now = Date.now(),
  ): Promise<StoredCouplingRow[]> {
    const expires = now + this.expiryMs;
    const stored: StoredCouplingRow[] = rows.map((r) => ({
      id: CouplingRegistry.rowId(r),
      ...(r.accessionNumber !== undefined ? { accessionNumber: r.accessionNumber } : {}),
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
          ...(s.accessionNumber ? [this.accessionKey(s.accessionNumber)] : []),
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
    const ids = await this.redis.sunion(
      this.studyKey(studyInstanceUid),
      ...accs.map((a) => this.accessionKey(a)),
    );
    const rows = await this.getMany(ids, now);
    return rows
      .filter(
        (r) =>
          r.studyInstanceUid === studyInstanceUid ||
          (r.accessionNumber !== undefined && accs.includes(r.accessionNumber.trim())),
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
    if (row?.accessionNumber) multi.srem(this.accessionKey(row.accessionNumber), id);
    if (row?.studyInstanceUid) multi.srem(this.studyKey(row.studyInstanceUid), id);
    const res = await multi.exec();
    return Number(res?.[0]?.[1] ?? 0) > 0;
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
