/**
 * Every repeatable job of FIONA (what the original ran from cron) as BullMQ job schedulers with stable
 * ids, so each shows up as a delayed job in Bull Board. upsertSchedules is idempotent: it upserts the
 * enabled schedulers and removes the disabled ones.
 */
import type { RepeatOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { createQueue, type JobPayloads, type QueueName } from "../queues/index.js";
import { redcapToken } from "../redcap/client.js";
import { configuredTables } from "../redcap/tables.js";
import { CLEAR_EXPORTS_SCHEDULER } from "./clear-exports.js";
import type { RepeatConfig } from "./config.js";

export interface ScheduleEntry<N extends QueueName = QueueName> {
  /** Stable scheduler id (the job scheduler key in Redis). */
  id: string;
  queue: N;
  data: JobPayloads[N];
  /** Undefined when the scheduler is disabled (by its `enabled` flag or because its feature is off). */
  repeat?: RepeatOptions;
}

function entry<N extends QueueName>(
  id: string,
  queue: N,
  data: JobPayloads[N],
  timing: RepeatConfig,
  featureOn = true,
): ScheduleEntry {
  const on = timing.enabled && featureOn && (timing.every !== undefined || timing.pattern !== undefined);
  const repeat: RepeatOptions | undefined = !on
    ? undefined
    : timing.pattern !== undefined
      ? { pattern: timing.pattern }
      : { every: timing.every! };
  return { id, queue, data, ...(repeat ? { repeat } : {}) } as ScheduleEntry;
}

/** Every scheduler FIONA knows, enabled or not (pure: the configuration decides). */
export function scheduleEntries(cfg: FionaConfig): ScheduleEntry[] {
  const s = cfg.schedules;
  const rc = cfg.redcap;
  const redcapEvery = {
    ...s.redcapSync,
    every: s.redcapSync.every ?? (rc ? rc.syncIntervalSeconds * 1000 : undefined),
  };
  const exportEvery = s.exportCleanup.pattern
    ? s.exportCleanup
    : {
        ...s.exportCleanup,
        every: s.exportCleanup.every ?? Math.round(cfg.exports.clearIntervalMinutes * 60_000),
      };
  return [
    entry("heartbeat", "heartbeat", { kind: "echo" }, s.heartbeat),
    entry("archive-cleanup", "cleanup", { kind: "archive" }, s.archiveCleanup),
    entry("reconcile", "cleanup", { kind: "reconcile" }, s.reconcile),
    entry("orphans", "cleanup", { kind: "orphans" }, s.orphans),
    entry("stale-links", "cleanup", { kind: "stale-links" }, s.staleLinks),
    entry("incoming-retention", "cleanup", { kind: "incoming-retention" }, s.incomingRetention),
    entry(CLEAR_EXPORTS_SCHEDULER, "export", { kind: "clear-exports" }, exportEvery),
    entry(
      "redcap-pull-transfers",
      "redcap-sync",
      { redcapProject: "incoming", kind: "pull-transfers" },
      redcapEvery,
      !!rc && !!redcapToken(rc, "incoming"),
    ),
    entry(
      "redcap-pull-tables",
      "redcap-sync",
      { redcapProject: "tables", kind: "pull-tables" },
      redcapEvery,
      Object.values(configuredTables(cfg)).some(Boolean),
    ),
    entry("inventory-crawl", "inventory", { kind: "crawl" }, s.inventoryCrawl, cfg.inventory.enabled),
    entry(
      "inventory-reconcile",
      "inventory",
      { kind: "reconcile" },
      s.inventoryReconcile,
      cfg.inventory.enabled,
    ),
  ];
}

/** Scheduler ids of earlier releases, removed wherever their queue's schedulers are kept. */
const RETIRED: Partial<Record<QueueName, string[]>> = { cleanup: ["quarantine-retention"] };

export interface UpsertResult {
  upserted: string[];
  removed: string[];
}

/** Upsert the enabled schedulers (of `queues` only, when given) and remove the disabled ones. */
export async function upsertSchedules(
  cfg: FionaConfig,
  connection: Redis,
  opts: { queues?: readonly QueueName[]; log?: Logger } = {},
): Promise<UpsertResult> {
  const result: UpsertResult = { upserted: [], removed: [] };
  const entries = scheduleEntries(cfg).filter((e) => !opts.queues || opts.queues.includes(e.queue));
  for (const name of new Set(entries.map((e) => e.queue))) {
    const queue = createQueue(name, connection, cfg.redis.prefix);
    try {
      for (const e of entries.filter((x) => x.queue === name)) {
        if (e.repeat) {
          await queue.upsertJobScheduler(e.id, e.repeat, { name: e.id, data: e.data as never });
          result.upserted.push(e.id);
        } else if (await queue.removeJobScheduler(e.id)) {
          result.removed.push(e.id);
        }
      }
      for (const id of RETIRED[name] ?? []) if (await queue.removeJobScheduler(id)) result.removed.push(id);
    } finally {
      await queue.close();
    }
  }
  opts.log?.info({ event: "schedules-upserted", ...result }, "job schedulers up to date");
  return result;
}
