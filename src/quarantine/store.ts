import type { Redis } from "ioredis";
import type { Logger } from "../log.js";
import type { QueueName } from "../queues/index.js";
import { recordIdOf, reasonOf, type QuarantineInput, type QuarantineRecord } from "./record.js";

/** Records beyond this many (oldest first) are dropped, with a log line, so Redis stays bounded. */
const MAX_RECORDS = 20_000;

const keys = (prefix: string) => ({
  /** Hash: record id -> JSON record. */
  records: `${prefix}:quarantine:records`,
  /** Sorted set of record ids by last failure (ms). */
  index: `${prefix}:quarantine:index`,
  /** Set of record ids about one transfer request (cleared when a later run succeeds). */
  request: (requestId: string) => `${prefix}:quarantine:request:${requestId}`,
});

/** Every stage's quarantine in Redis: what failed for good, until retried or dismissed. */
export class QuarantineStore {
  private readonly keys: ReturnType<typeof keys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly log?: Logger,
  ) {
    this.keys = keys(prefix);
  }

  async add(input: QuarantineInput, now = Date.now()): Promise<QuarantineRecord> {
    const id = recordIdOf(input);
    const at = new Date(now).toISOString();
    const before = await this.get(id);
    const record: QuarantineRecord = {
      ...input,
      reason: reasonOf(input.reason),
      id,
      firstAt: before?.firstAt ?? at,
      lastAt: at,
      count: (before?.count ?? 0) + 1,
    };
    const multi = this.redis
      .multi()
      .hset(this.keys.records, id, JSON.stringify(record))
      .zadd(this.keys.index, now, id);
    if (record.ids.requestId) multi.sadd(this.keys.request(record.ids.requestId), id);
    await multi.exec();
    this.log?.warn(
      { event: "quarantined", quarantineId: id, stage: record.stage, ...record.ids, reason: record.reason },
      `${record.stage}: quarantined`,
    );
    await this.trim();
    return record;
  }

  async get(id: string): Promise<QuarantineRecord | undefined> {
    const raw = await this.redis.hget(this.keys.records, id);
    return raw ? (JSON.parse(raw) as QuarantineRecord) : undefined;
  }

  /** Newest first, optionally of one stage. */
  async list(opts: { stage?: QueueName; limit?: number } = {}): Promise<QuarantineRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.index, 0, -1);
    if (!ids.length) return [];
    const raws = await this.redis.hmget(this.keys.records, ...ids);
    const all = raws.filter((r): r is string => !!r).map((r) => JSON.parse(r) as QuarantineRecord);
    const of = opts.stage ? all.filter((r) => r.stage === opts.stage) : all;
    return of.slice(0, opts.limit ?? of.length);
  }

  /** Records per stage (stages with none are left out). */
  async countByStage(): Promise<Partial<Record<QueueName, number>>> {
    const counts: Partial<Record<QueueName, number>> = {};
    for (const r of await this.list()) counts[r.stage] = (counts[r.stage] ?? 0) + 1;
    return counts;
  }

  async remove(id: string): Promise<boolean> {
    const record = await this.get(id);
    if (!record) return false;
    const multi = this.redis.multi().hdel(this.keys.records, id).zrem(this.keys.index, id);
    if (record.ids.requestId) multi.srem(this.keys.request(record.ids.requestId), id);
    await multi.exec();
    return true;
  }

  /** A run of this transfer request succeeded: what its earlier runs left here is resolved. */
  async resolveRequest(requestId: string): Promise<number> {
    const ids = await this.redis.smembers(this.keys.request(requestId));
    for (const id of ids) await this.remove(id);
    await this.redis.del(this.keys.request(requestId));
    return ids.length;
  }

  private async trim(): Promise<void> {
    const excess = (await this.redis.zcard(this.keys.index)) - MAX_RECORDS;
    if (excess <= 0) return;
    const oldest = await this.redis.zrange(this.keys.index, 0, excess - 1);
    for (const id of oldest) await this.remove(id);
    this.log?.warn(
      { event: "quarantine-trimmed", dropped: oldest.length, max: MAX_RECORDS },
      "quarantine full: oldest records dropped",
    );
  }
}
