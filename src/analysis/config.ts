import { z } from "zod";

/**
 * Analysis jobs (issue #9): an algorithm (a container image, or a local command with the `process`
 * runtime) run over pseudonymized series of a study, its results sent back to the research PACS and
 * REDCap. Configuration key `analysis`.
 */

const jobName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, _ . - only");

const calledAe = z
  .string()
  .min(1)
  .max(16)
  .regex(/^[\x20-\x7e]+$/, "AE titles are 1-16 printable ASCII characters");

export const RUNTIMES = ["docker", "podman", "process"] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

/** A condition on a field of the series JSON (src/ingest/series-summary.ts), e.g. Modality == "MR". */
const tagCondition = z
  .object({
    /** Field of the series JSON (FIONA names: Modality, SeriesDescription, EchoTime, …). */
    tag: z.string().min(1),
    op: z.enum(["==", "!=", "contains", "regexp", "<", ">"]).default("=="),
    value: z.union([z.string(), z.number()]),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.op !== "regexp") return;
    try {
      new RegExp(String(c.value));
    } catch {
      ctx.addIssue({ code: "custom", path: ["value"], message: "not a valid regular expression" });
    }
  });

export const analysisJobSchema = z
  .object({
    name: jobName,
    description: z.string().optional(),
    /** Runtime of this job; defaults to analysis.runtime. */
    runtime: z.enum(RUNTIMES).optional(),
    /** Container image (docker/podman runtimes). */
    image: z.string().min(1).optional(),
    /**
     * Command (argv). Placeholders: {input} (folder of DICOM series), {output} (writable folder),
     * {descr} (descr.json), {output_json} (output/output.json), {job} (the job folder; process
     * runtime only). For docker/podman the command follows the image (empty = the image's entrypoint).
     */
    command: z.array(z.string()).default([]),
    limits: z
      .object({
        /** Container memory limit as docker takes it ("512m", "4g"); not enforced by `process`. */
        memory: z
          .string()
          .regex(/^[0-9]+[bkmg]?$/i, 'a size such as "512m" or "4g"')
          .optional(),
        /** CPUs (docker --cpus); not enforced by `process`. */
        cpus: z.number().positive().max(1024).optional(),
        /** Wall-clock limit; the job is killed and fails after this. */
        timeoutSeconds: z
          .number()
          .positive()
          .max(7 * 86_400)
          .default(3600),
      })
      .strict()
      .default({}),
    /** Environment variables for the algorithm (values are not secret-safe: they appear in argv for docker). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    /** Options passed as JSON in FIONA_JOB_OPTIONS (and ROR_CONT_OPTIONS, as the original). */
    options: z.record(z.string(), z.unknown()).optional(),
    /** Allow network access (docker/podman: default `--network none`). */
    network: z.boolean().default(false),
    /** Which data the job takes. */
    select: z
      .object({
        /** "series": only matching series; "study": every series of a study with a matching series. */
        level: z.enum(["series", "study"]).default("series"),
        /** A series matches when it has any of these ClassifyTypes (empty = any). */
        classifyTypes: z.array(z.string().min(1)).default([]),
        /** And every condition holds. */
        tags: z.array(tagCondition).default([]),
      })
      .strict()
      .default({}),
    /** When the job runs besides manually (fiona analyze). */
    trigger: z
      .object({
        /** Studies sent to this called AE title (the algorithm's AE title). */
        calledAe: calledAe.optional(),
        /** Arrivals of studies assigned to one of these projects. */
        projects: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .default({}),
    /** Where results go. */
    results: z
      .object({
        /** Project whose destination receives the DICOM results (default: the job's project). */
        project: z.string().min(1).optional(),
        /** Send valid output DICOM to the research PACS. */
        sendDicom: z.boolean().default(true),
        /** Write output.json rows to the project's REDCap (when REDCap and its token are configured). */
        redcap: z.boolean().default(true),
        /** The record id field of the project's REDCap. */
        recordIdField: z.string().min(1).default("record_id"),
      })
      .strict()
      .default({}),
  })
  .strict();

export const analysisSchema = z
  .object({
    /** Default runtime: docker, podman or process. */
    runtime: z.enum(RUNTIMES).default("docker"),
    /** Path or name of the docker/podman binary (default: the runtime's name). */
    engineBinary: z.string().min(1).optional(),
    /** Job folders are created here (default <dataDir>/site/analysis). */
    workDir: z.string().min(1).optional(),
    /** Delete the job folder after a successful run. */
    removeJobFolder: z.boolean().default(false),
    /** Algorithms running at once per worker process. */
    concurrency: z.number().int().min(1).max(64).default(1),
    /** Lines of stdout/stderr copied into the job log (everything goes to <job>/log/). */
    maxLogLines: z.number().int().min(0).max(100_000).default(2000),
    jobs: z
      .array(analysisJobSchema)
      .default([])
      .superRefine((js, ctx) => {
        const seen = new Set<string>();
        js.forEach((j, i) => {
          if (seen.has(j.name))
            ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate analysis job ${j.name}` });
          seen.add(j.name);
        });
      }),
  })
  .strict()
  .superRefine((a, ctx) => {
    a.jobs.forEach((j, i) => {
      const rt = j.runtime ?? a.runtime;
      if (rt !== "process" && !j.image)
        ctx.addIssue({
          code: "custom",
          path: ["jobs", i, "image"],
          message: `the ${rt} runtime needs an image`,
        });
      if (rt === "process" && j.command.length === 0)
        ctx.addIssue({
          code: "custom",
          path: ["jobs", i, "command"],
          message: "the process runtime needs a command",
        });
    });
  });

export type AnalysisConfig = z.infer<typeof analysisSchema>;
export type AnalysisJobConfig = z.infer<typeof analysisJobSchema>;
export type TagCondition = z.infer<typeof tagCondition>;
