import type { Redis } from "ioredis";
import type { Logger } from "../log.js";

/**
 * The audit log: who did what when. Assignments (study, project, participant, event), sign-ins,
 * retries, and every action through Bull Board (queue, job id, the HTTP status it was answered with).
 * Kept in a capped Redis stream (`<prefix>:registry:audit`, trimmed to about `maxEntries`) and written
 * as a pino event (`event: "audit"`, the entry under `audit`) first, so log shipping keeps a copy beyond the cap. Entries carry
 * identifiers and pseudonyms only, never patient data.
 */

export type AuditAction =
  "assign" | "retry" | "coupling-upload" | "login" | "login-failed" | "logout" | (string & {});

export interface AuditInput {
  user: string;
  action: AuditAction;
  /** How the user was authenticated: password (form), basic, proxy, open. */
  via?: string;
  /** Client address. */
  ip?: string;
  study?: string;
  project?: string;
  participant?: string;
  event?: string;
  requestId?: string;
  run?: number;
  /** Bull Board actions: the queue and job acted on, and the HTTP status of the answer. */
  queue?: string;
  jobId?: string;
  status?: number;
  /** Short free text (no patient data), e.g. the outcome of a coupling upload. */
  detail?: string;
}

export interface AuditEntry extends AuditInput {
  /** Stream id ("<ms>-<seq>"). */
  id: string;
  /** ISO time. */
  at: string;
}

export interface AuditListOptions {
  limit?: number;
  /** Only entries of these projects (entries without a project are left out too); all when absent. */
  projects?: ReadonlySet<string>;
  /** Only entries older than this stream id (paging). */
  before?: string;
}

export interface AuditSinceOptions {
  /** At most this many, the oldest first. */
  limit?: number;
}

const DEFAULT_AUDIT_MAX_ENTRIES = 100_000;

/** Every field of an entry, in the order it is written. */
export const AUDIT_FIELDS = [
  "at",
  "user",
  "action",
  "via",
  "ip",
  "study",
  "project",
  "participant",
  "event",
  "requestId",
  "run",
  "queue",
  "jobId",
  "status",
  "detail",
] as const;

export class AuditLog {
  readonly key: string;
  private readonly maxEntries: number;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly opts: { logger?: Logger; maxEntries?: number } = {},
  ) {
    this.key = `${prefix}:registry:audit`;
    this.maxEntries = opts.maxEntries ?? DEFAULT_AUDIT_MAX_ENTRIES;
  }

  /** Write one entry (pino first, then the stream). */
  async record(input: AuditInput, now = Date.now()): Promise<AuditEntry> {
    const at = new Date(now).toISOString();
    const values: Record<string, string> = { at };
    for (const f of AUDIT_FIELDS) {
      const v = (input as unknown as Record<string, unknown>)[f];
      if (f !== "at" && v !== undefined && v !== "") values[f] = String(v).slice(0, 1000);
    }
    this.opts.logger?.info({ event: "audit", audit: values }, `audit: ${input.action}`);
    const args = Object.entries(values).flat();
    const id = await this.redis.xadd(this.key, "MAXLEN", "~", String(this.maxEntries), "*", ...args);
    return { ...input, id: id ?? "", at };
  }

  /** Newest entries first. */
  async list(opts: AuditListOptions = {}): Promise<AuditEntry[]> {
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 1000));
    const out: AuditEntry[] = [];
    let end = opts.before ? `(${opts.before}` : "+";
    // Filtering by project may skip entries; read in pages until enough match or the stream ends.
    for (let pages = 0; out.length < limit && pages < 20; pages++) {
      const batch = await this.redis.xrevrange(
        this.key,
        end,
        "-",
        "COUNT",
        String(opts.projects ? 500 : limit),
      );
      if (batch.length === 0) break;
      for (const [id, flat] of batch) {
        const e = toEntry(id, flat);
        if (opts.projects && (!e.project || !opts.projects.has(e.project))) continue;
        out.push(e);
        if (out.length >= limit) break;
      }
      end = `(${batch[batch.length - 1]![0]}`;
      if (!opts.projects) break;
    }
    return out;
  }

  /** Entries from `since` (ms since the epoch) on, oldest first. */
  async since(since: number, opts: AuditSinceOptions = {}): Promise<AuditEntry[]> {
    const limit = Math.max(1, Math.min(opts.limit ?? 1000, 100_000));
    const batch = await this.redis.xrange(
      this.key,
      `${Math.max(0, Math.floor(since))}-0`,
      "+",
      "COUNT",
      String(limit),
    );
    return batch.map(([id, flat]) => toEntry(id, flat));
  }
}

function toEntry(id: string, flat: string[]): AuditEntry {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return {
    id,
    at: h.at ?? new Date(Number(id.split("-")[0])).toISOString(),
    user: h.user ?? "",
    action: h.action ?? "",
    ...(h.via ? { via: h.via } : {}),
    ...(h.ip ? { ip: h.ip } : {}),
    ...(h.study ? { study: h.study } : {}),
    ...(h.project ? { project: h.project } : {}),
    ...(h.participant ? { participant: h.participant } : {}),
    ...(h.event ? { event: h.event } : {}),
    ...(h.requestId ? { requestId: h.requestId } : {}),
    ...(h.run ? { run: Number(h.run) } : {}),
    ...(h.queue ? { queue: h.queue } : {}),
    ...(h.jobId ? { jobId: h.jobId } : {}),
    ...(h.status ? { status: Number(h.status) } : {}),
    ...(h.detail ? { detail: h.detail } : {}),
  };
}
