import { z } from "zod";
import { dicomPeerSchema } from "../config/dicom-fields.js";

/** Characters that are wildcards or separators in a C-FIND key and so cannot name a bucket. */
const WILDCARDS = /[*?\\]/;

/** Research-PACS inventory and reconciliation (src/inventory). */
export const inventorySchema = z
  .object({
    /** Let the scheduler crawl every project hourly and reconcile daily (manual crawls work regardless). */
    enabled: z.boolean().default(false),
    /** The research PACS's Q/R SCP; default: `researchPacs`. */
    pacs: dicomPeerSchema.optional(),
    /** Projects to crawl (their name is the PACS's InstitutionName); default: every configured project. */
    projects: z.array(z.string().min(1)).optional(),
    /**
     * Last characters of PatientID a refused query is split by (`*0` … `*9`, then `*00` …); the default
     * covers pseudonyms ending in a digit or an upper-case letter and `^` as the original's fallback.
     */
    bucketAlphabet: z
      .string()
      .min(2)
      .refine((a) => !WILDCARDS.test(a), "the bucket alphabet cannot contain *, ? or \\")
      .refine((a) => new Set(a).size === a.length, "the bucket alphabet repeats a character")
      .default("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^"),
    /** Longest PatientID suffix a query is split down to; a bucket still refused there stays incomplete. */
    bucketDepth: z.number().int().min(0).max(4).default(3),
    /** Pause between two queries of one crawl (the original slept 0.1-0.4 s). */
    pauseMs: z.number().int().min(0).max(60_000).default(100),
    /** Network timeout of each C-FIND step. */
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /**
     * REDCap project (a `redcap.projects` key or FIONA_REDCAP_TOKEN_<NAME>) that mirrors the inventory as
     * WhatIsInIDS7 records; used only when REDCap is configured and it has a token.
     */
    redcap: z.string().min(1).default("whatIsInIds7"),
  })
  .strict();

export type InventoryConfig = z.infer<typeof inventorySchema>;
