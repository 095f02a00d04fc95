import { z } from "zod";

/** Five- or six-field cron pattern (BullMQ's cron-parser checks it in detail at upsert time). */
const cronPattern = z
  .string()
  .trim()
  .regex(/^\S+(\s+\S+){4,5}$/, "expected a cron pattern with 5 or 6 fields");

/**
 * When a scheduler fires: `every` milliseconds (at least 1000) or a cron `pattern`, never both.
 * `defaults` is the timing used when the section names neither.
 */
function repeat<T extends z.ZodRawShape>(defaults: { every?: number; pattern?: string }, extra: T) {
  const section = z
    .object({
      enabled: z.boolean().default(true),
      every: z
        .number()
        .int()
        .min(1000)
        .max(31 * 86_400_000)
        .optional(),
      pattern: cronPattern.optional(),
      ...extra,
    })
    .strict()
    .refine((s) => s.every === undefined || s.pattern === undefined, {
      message: "give either every or pattern, not both",
    })
    .transform((s) => (s.every === undefined && s.pattern === undefined ? { ...s, ...defaults } : s));
  // An absent section is an empty one (every field defaulted).
  return z.preprocess((v) => v ?? {}, section);
}

/** Job scheduler timings, heartbeat and cleanup (src/schedules). Defaults follow FIONA's crontab. */
export const schedulesSchema = z
  .object({
    /** C-ECHO of the receiver by itself, processed inside the receiver process. */
    heartbeat: repeat(
      { every: 60_000 },
      {
        /** The receiver exits (non-zero, for pm2 or systemd to restart it) after this many failures in a row. */
        failuresBeforeExit: z.number().int().min(1).max(1000).default(3),
        echoTimeoutMs: z.number().int().min(100).max(600_000).default(20_000),
        /** Skip the echo when another association sent a PDU this recently (FIONA: receiver log < 16 s old). */
        activityGraceSeconds: z.number().min(0).max(3600).default(16),
      },
    ),
    /** Delete whole studies, sent or old ones first, while the data disk is too full. */
    archiveCleanup: repeat(
      { pattern: "30 * * * *" },
      {
        /** Start deleting above this use of the data disk (percent). */
        maxDiskPercent: z.number().min(1).max(100).default(80),
        /** Stop once use is below this (percent); default 5 points under maxDiskPercent. */
        targetDiskPercent: z.number().min(1).max(100).optional(),
        /** A study whose last image is older than this counts as deletable as if it were sent. */
        retentionDays: z.number().positive().max(36_500).default(30),
        /** Log and return the plan, delete nothing. */
        dryRun: z.boolean().default(false),
      },
    ),
    /**
     * Ingest archived files that have no raw link and no pending ingest job; run again ingest jobs
     * that failed for a transient cause (src/cleanup/reconcile.ts).
     */
    reconcile: repeat(
      { every: 60_000 },
      {
        /** Read every study folder this often; other passes read those changed since the last one. */
        fullPassHours: z.number().positive().max(744).default(24),
        /** A file younger than this may still have its job on the way: left for a later pass. */
        minAgeSeconds: z.number().min(0).max(86_400).default(60),
      },
    ),
    /** Remove temporary files whose writer is gone (src/cleanup/orphans.ts). */
    orphans: repeat(
      { every: 60_000 },
      {
        /** Temporary files of another host, or without a writer in their name, go once unchanged this long. */
        graceMinutes: z.number().min(0).max(10_080).default(10),
        /** Read every folder of raw/, the outbox and the upload store this often; else the changed ones. */
        fullPassHours: z.number().positive().max(744).default(24),
      },
    ),
    /** Broken symlinks, empty folders and orphaned series JSON under raw, participants and srs. */
    staleLinks: repeat({ pattern: "2 3 * * *" }, {}),
    /** Drop studies past incoming.retentionDays (and expired coupling rows) from the lists. */
    incomingRetention: repeat({ pattern: "2 */4 * * *" }, {}),
    /** clearExports (src/schedules/clear-exports.ts); default: every exports.clearIntervalMinutes. */
    exportCleanup: repeat({}, {}),
    /** REDCap pulls (transfer requests, tables); default: every redcap.syncIntervalSeconds. */
    redcapSync: repeat({}, {}),
    /** Inventory crawl of every project; only when inventory.enabled. */
    inventoryCrawl: repeat({ pattern: "0 * * * *" }, {}),
    /** Inventory reconciliation against the transfers; only when inventory.enabled. */
    inventoryReconcile: repeat({ pattern: "0 0 * * *" }, {}),
    /** /readyz flags a queue whose oldest waiting job has waited longer than this (or that has no worker). */
    maxWaitingSeconds: z
      .number()
      .positive()
      .max(86_400 * 7)
      .default(900),
  })
  .strict()
  .refine(
    (s) =>
      s.archiveCleanup.targetDiskPercent === undefined ||
      s.archiveCleanup.targetDiskPercent <= s.archiveCleanup.maxDiskPercent,
    { message: "archiveCleanup.targetDiskPercent must not exceed maxDiskPercent", path: ["archiveCleanup"] },
  );

export type SchedulesConfig = z.infer<typeof schedulesSchema>;
/** The timing part every scheduler entry has. */
export interface RepeatConfig {
  enabled: boolean;
  every?: number;
  pattern?: string;
}
