/**
 * Incremental passes over a big tree (the archive, raw/, the outbox): a pass reads only the folders
 * whose mtime moved since the previous pass began, plus the folders that pass asked to see again
 * (something in them was left for later); every `fullEveryMs`, or when Redis has no record, it reads
 * them all. A folder's mtime moves whenever an entry is created, renamed or removed in it, so a file
 * written after a pass read its folder is seen by the next one. The record is one Redis hash.
 */
import type { Redis } from "ioredis";
import { withLock } from "../registry/lock.js";

/** Clock granularity of file systems and the skew between hosts sharing one. */
const SLACK_MS = 5000;
/** More folders to see again than this and the next pass is a full one (the record stays small). */
const MAX_RECHECK = 10_000;

export interface Pass {
  full: boolean;
  startedAt: number;
  /** Read a folder whose mtime is at or after this. */
  since: number;
  /** Folders to read whatever their mtime. */
  recheck: Set<string>;
}

/** A JSON list of strings, or undefined for anything else (a missing or damaged record). */
function parseList(raw: string | undefined): string[] | undefined {
  try {
    const v: unknown = JSON.parse(raw ?? "");
    return Array.isArray(v) && v.every((x) => typeof x === "string") ? v : undefined;
  } catch {
    return undefined;
  }
}

export class IncrementalPasses {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly fullEveryMs: number,
  ) {}

  async begin(opts: { full?: boolean; now?: number } = {}): Promise<Pass> {
    const startedAt = opts.now ?? Date.now();
    const h = await this.redis.hgetall(this.key);
    const since = Number(h.since);
    const fullAt = Number(h.fullAt);
    const recheck = parseList(h.recheck);
    const full =
      !!opts.full ||
      !Number.isFinite(since) ||
      !Number.isFinite(fullAt) ||
      recheck === undefined ||
      startedAt - fullAt >= this.fullEveryMs;
    return { full, startedAt, since: full ? 0 : since - SLACK_MS, recheck: new Set(full ? [] : recheck) };
  }

  /** Whether the pass reads `dir` (mtime `mtimeMs`). */
  reads(pass: Pass, dir: string, mtimeMs: number): boolean {
    return pass.full || mtimeMs >= pass.since || pass.recheck.has(dir);
  }

  /** Record a finished pass and the folders the next one must read again. */
  async commit(pass: Pass, recheck: Iterable<string>): Promise<void> {
    const again = [...new Set(recheck)];
    const fields: Record<string, string> = {
      since: String(pass.startedAt),
      recheck: JSON.stringify(again.length > MAX_RECHECK ? [] : again),
    };
    if (again.length > MAX_RECHECK) fields.fullAt = "0";
    else if (pass.full) fields.fullAt = String(pass.startedAt);
    await this.redis.hset(this.key, fields);
  }
}

/** Another pass held the lock for longer than the caller would wait. */
export const BUSY = { skipped: "another pass is running" } as const;

/**
 * Run one pass at a time across processes (they share the record): BUSY after `waitMs` of waiting,
 * or as soon as `signal` is aborted while waiting.
 */
export async function exclusive<T>(
  redis: Redis,
  key: string,
  opts: { waitMs: number; signal?: AbortSignal | undefined },
  fn: () => Promise<T>,
): Promise<T | typeof BUSY> {
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    const waitMs = Math.max(0, Math.min(1000, deadline - Date.now()));
    try {
      return await withLock(redis, `${key}:lock`, fn, { ttlMs: 60_000, waitMs, renew: true });
    } catch (e) {
      if (!(e as Error).message.startsWith("timed out waiting for lock")) throw e;
      if (Date.now() >= deadline || opts.signal?.aborted) return BUSY;
    }
  }
}
