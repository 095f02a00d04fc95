import { z } from "zod";
import { dicomPeerSchema, portSchema } from "../config/dicom-fields.js";

/** A scanner FIONA may query and pull from; its name appears in job data and Redis keys. */
export const scannerSchema = dicomPeerSchema.extend({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "scanner names are 1-32 letters, digits, _ or -"),
  // aeTitle: the scanner's own (called in C-FIND/C-MOVE; its MPPS messages call us with it).
});

/** MPPS SCP and scanner pulls (src/scanner). */
export const scannersSchema = z
  .object({
    mpps: z
      .object({
        /** Listen for MPPS (N-CREATE/N-SET) with the receiver role; each in-progress step starts a pull. */
        enabled: z.boolean().default(false),
        /** The original FIONA's ppsscpfs port. */
        port: portSchema.default(4007),
        /** Interface the MPPS listener binds to (default: dicomHost). */
        host: z.string().optional(),
      })
      .strict()
      .default({}),
    list: z
      .array(scannerSchema)
      .default([])
      .refine((l) => new Set(l.map((s) => s.name)).size === l.length, "scanner names must be unique"),
    /** A pull that is not complete after this long gives up (the original's 86400 s). */
    giveUpHours: z
      .number()
      .positive()
      .max(24 * 30)
      .default(24),
    /** Pause between two checks of the scanner (the original's cron cadence). */
    recheckSeconds: z.number().positive().max(3600).default(15),
    /** A series moved but still incomplete is moved again only after this long (ingest may lag). */
    moveAgainSeconds: z.number().min(0).max(86_400).default(60),
    /** Network timeout per association step of a C-FIND or C-MOVE. */
    queryTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** A C-MOVE of one series may take this long in total. */
    moveTimeoutMs: z.number().int().min(1000).max(3_600_000).default(600_000),
  })
  .strict();

export type ScannersConfig = z.infer<typeof scannersSchema>;
export type ScannerConfig = z.infer<typeof scannerSchema>;
