import { z } from "zod";

const aeTitle = z
  .string()
  .min(1)
  .max(16)
  .regex(/^[\x20-\x7e]+$/, "AE titles are 1-16 printable ASCII characters")
  .refine((s) => !s.includes("\\"), "AE titles must not contain a backslash");

const port = z.number().int().min(1).max(65535);

export const configSchema = z
  .object({
    /** The AE title this FIONA answers as (any called AE title is still accepted and recorded). */
    aeTitle: aeTitle.default("FIONA"),
    /** Root of the FIONA data tree: <dataDir>/site/{archive,raw,participants,quarantine-bad}. */
    dataDir: z.string().min(1).default(".fiona-data"),
    dicomPort: port.default(11112),
    /** Interface the DICOM listener binds to; "0.0.0.0" for every interface. */
    dicomHost: z.string().default("0.0.0.0"),
    httpPort: port.default(8080),
    httpHost: z.string().default("127.0.0.1"),
    redis: z
      .object({
        url: z.string().url().default("redis://127.0.0.1:6379"),
        /** Every key lives under this prefix, so several instances (and test runs) share one Redis. */
        prefix: z
          .string()
          .min(1)
          .regex(/^[A-Za-z0-9_{}.-]+$/, "letters, digits, _ . - { } only")
          .default("fiona"),
        /** Start a child redis-server when none answers (fiona start only). */
        startLocal: z.boolean().default(true),
      })
      .strict()
      .default({}),
    receiver: z
      .object({
        maxAssociations: z.number().int().min(1).max(1000).default(64),
        /** When non-empty, only these calling AE titles may associate. */
        allowedCallingAeTitles: z.array(aeTitle).default([]),
        maxPduLength: z.number().int().min(4096).max(4_194_304).default(262_144),
        /** fsync each file before answering Success (durable against power loss, slower). */
        fsync: z.boolean().default(false),
      })
      .strict()
      .default({}),
    ingest: z
      .object({
        concurrency: z.number().int().min(1).max(256).default(16),
      })
      .strict()
      .default({}),
    arrival: z
      .object({
        /** A study counts as arrived after this many seconds without a new image. */
        quietSeconds: z.number().positive().max(86_400).default(15),
      })
      .strict()
      .default({}),
    classify: z
      .object({
        /** classifyRules.json to use; the shipped default rules when unset. */
        rulesFile: z.string().optional(),
      })
      .strict()
      .default({}),
    web: z
      .object({
        /** Basic auth for Bull Board and the API; the password is stored as a scrypt hash (fiona hash-password). */
        basicAuth: z
          .object({ user: z.string().min(1), passwordHash: z.string().min(1) })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      })
      .strict()
      .default({}),
  })
  .strict();

export type FionaConfig = z.infer<typeof configSchema>;
export type FionaConfigInput = z.input<typeof configSchema>;
