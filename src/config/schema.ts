import { z } from "zod";
import { projectDeidSchema, type ProjectDeid } from "../deid/project.js";

const aeTitle = z
  .string()
  .min(1)
  .max(16)
  .regex(/^[\x20-\x7e]+$/, "AE titles are 1-16 printable ASCII characters")
  .refine((s) => !s.includes("\\"), "AE titles must not contain a backslash");

const port = z.number().int().min(1).max(65535);

const destination = z
  .object({ aeTitle, host: z.string().min(1), port, callingAeTitle: aeTitle.optional() })
  .strict();

/** A research project: de-identification settings plus where its studies go. */
export const projectSchema = projectDeidSchema.extend({ destination: destination.optional() });

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
    /**
     * Site secret: the HMAC key of pseudonymized UIDs, accession numbers and derived date offsets.
     * Keep it stable (changing it splits studies in the research PACS) and out of version control.
     */
    secret: z.string().min(16, "use at least 16 characters").optional(),
    projects: z
      .array(projectSchema)
      .default([])
      .superRefine((ps, ctx) => {
        const seen = new Set<string>();
        ps.forEach((p, i) => {
          if (seen.has(p.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate project ${p.name}` });
          seen.add(p.name);
        });
      }),
    /** Default research PACS for projects without a destination of their own. */
    researchPacs: destination.optional(),
    transfer: z
      .object({
        /** Threads de-identifying in parallel (default: the number of cores). */
        deidThreads: z.number().int().min(1).max(64).optional(),
        /** Send attempts per series before the job fails (retries back off exponentially with jitter). */
        attempts: z.number().int().min(1).max(100).default(12),
        /** First retry delay; each further retry doubles it. */
        backoffMs: z.number().int().min(10).max(3_600_000).default(2000),
        /** Per-association network timeout. */
        timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
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
export type ProjectConfig = z.infer<typeof projectSchema>;
export type Destination = z.infer<typeof destination>;

/** The de-identification part of a project, as the engine takes it. */
export function deidSettings(project: ProjectConfig): ProjectDeid {
  const { destination: _destination, ...deid } = project;
  return deid;
}
export type FionaConfigInput = z.input<typeof configSchema>;
