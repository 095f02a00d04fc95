import { z } from "zod";
import { analysisSchema } from "../analysis/config.js";
import { projectDeidSchema, type ProjectDeid } from "../deid/project.js";
import { aeTitleSchema, dicomPeerSchema, portSchema, tlsVersionSchema } from "./dicom-fields.js";
import { redisSchema } from "./redis.js";
import { exportsSchema, noAssignSchema } from "../export/config.js";
import { automationSchema } from "../automation/config.js";
import { inventorySchema } from "../inventory/config.js";
import { scannersSchema } from "../scanner/config.js";
import { schedulesSchema } from "../schedules/config.js";
import { wsiSchema } from "../wsi/config.js";
import { IdPatternError, parseIdPattern } from "../routing/autoid.js";
import { isValidPyPattern } from "../routing/rules.js";
import { isPasswordHash } from "../web/password.js";
import { ROLES } from "../web/roles.js";

const aeTitle = aeTitleSchema;
const port = portSchema;

const destination = dicomPeerSchema;
const jobsAtOnce = (n: number) => z.number().int().min(1).max(256).default(n);

/**
 * Auto-ID: studies addressed to `aeTitle` (the called AE title) get a random participant ID drawn from
 * `pattern` (gen-id syntax, see src/routing/autoid.ts), the same one for every study of a patient.
 */
const autoIdSchema = z
  .object({
    aeTitle,
    pattern: z.string().superRefine((p, ctx) => {
      try {
        parseIdPattern(p);
      } catch (e) {
        if (!(e instanceof IdPatternError)) throw e;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: e.message });
      }
    }),
  })
  .strict();

/** A web user name (also stored in <dataDir>/users.json by fiona user add). */
export const webUserName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._@+-]+$/, "letters, digits and . _ @ + - only");

/** A Python regular expression (re.match semantics), empty meaning "not used". */
const pyPattern = z.string().refine(isValidPyPattern, "not a valid regular expression");

/** One routing rule (FIONA's REDCap Routing table); semantics in src/routing/rules.ts. */
const routingRuleSchema = z
  .object({
    name: z.string().optional(),
    active: z.boolean().default(true),
    /** Called AE title (the AE title the sender addressed), compared for equality. */
    calledAe: z.string().max(16).optional(),
    /** Calling AE title (the sender), compared for equality. */
    callingAe: z.string().max(16).optional(),
    patientId: pyPattern.optional(),
    patientName: pyPattern.optional(),
    project: z.string().min(1),
    event: z.string().optional(),
  })
  .strict()
  .refine((r) => !!(r.calledAe?.trim() || r.callingAe?.trim()), "a rule needs calledAe or callingAe")
  .refine((r) => !!(r.patientId || r.patientName), "a rule needs a patientId or patientName pattern");

/** A research project: de-identification settings plus where its studies go. */
export const projectSchema = projectDeidSchema.extend({
  destination: destination.optional(),
  autoId: autoIdSchema.optional(),
});

/** A REDCap project's API token (32 hex characters for a project token); also FIONA_REDCAP_TOKEN_<NAME>. */
const redcapProjectSchema = z
  .object({
    token: z
      .string()
      .regex(/^[A-Za-z0-9]{1,128}$/, "a REDCap API token is letters and digits only")
      .optional(),
  })
  .strict();

/**
 * REDCap integration (src/redcap). Tokens come from here or from the environment
 * (FIONA_REDCAP_TOKEN_INCOMING, _ROUTING, _COUPLING, _DATA_TRANSFER_PROJECTS, _AUTO_ID,
 * FIONA_REDCAP_TOKEN_PROJECT_<PROJECT>); the environment wins. Tokens never enter logs or job data.
 */
export const redcapSchema = z
  .object({
    /** The API endpoint, ending in /api/ (REDCap redirects other forms, turning the POST into a GET). */
    url: z
      .string()
      .url()
      .refine((u) => /\/api\/$/.test(u), "the REDCap API URL ends in /api/"),
    /** PEM file of an extra CA to trust (TLS verification stays on). */
    ca: z.string().min(1).optional(),
    /** API calls per minute for all workers together (REDCap bans an IP above 600/min by default). */
    rateLimitPerMinute: z.number().int().min(1).max(6000).default(300),
    /** Per-call timeout. */
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Retries of one call on 5xx, timeouts and network errors before the job's own backoff takes over. */
    retries: z.number().int().min(0).max(10).default(2),
    /** How often transfer requests are pulled from Incoming (and tables from REDCap). */
    syncIntervalSeconds: z.number().int().min(5).max(86_400).default(60),
    projects: z
      .object({
        incoming: redcapProjectSchema.optional(),
        routing: redcapProjectSchema.optional(),
        coupling: redcapProjectSchema.optional(),
        dataTransferProjects: redcapProjectSchema.optional(),
        autoId: redcapProjectSchema.optional(),
        /** WhatIsInIDS7: one record per study of the research PACS (src/inventory/redcap.ts). */
        whatIsInIds7: redcapProjectSchema.optional(),
        /** Per research project REDCap (participant records with an `imaging` repeat), by FIONA project name. */
        perProject: z.record(z.string().min(1), redcapProjectSchema).default({}),
      })
      .strict()
      .default({}),
  })
  .strict();

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
    /** One Redis, a Sentinel-monitored master or a Redis Cluster (src/config/redis.ts). */
    redis: redisSchema.default({}),
    receiver: z
      .object({
        /** Associations accepted at once; one more is rejected as transient (local limit exceeded). */
        maxAssociations: z.number().int().min(1).max(1000).default(64),
        /**
         * TCP connections at once, negotiating or associated. When full, the oldest connection still
         * negotiating (from the address holding the most) makes room; otherwise the new one is closed.
         */
        maxConnections: z.number().int().min(2).max(10_000).default(256),
        /** TCP connections at once from one IP address, so that one host cannot lock out the others. */
        maxConnectionsPerPeer: z.number().int().min(1).max(10_000).default(32),
        /**
         * ARTIM timer (PS3.8 9.1.5): a connection without a complete A-ASSOCIATE-RQ after this long is
         * closed; also how long a rejected or released peer may take to close.
         */
        artimSeconds: z.number().positive().max(600).default(10),
        /** An association with no PDU for this long is aborted (a peer that stalls mid-transfer). */
        idleSeconds: z.number().positive().max(86_400).default(180),
        /** When non-empty, only these calling AE titles may associate. */
        allowedCallingAeTitles: z.array(aeTitle).default([]),
        maxPduLength: z.number().int().min(4096).max(4_194_304).default(262_144),
        /** fsync each file before answering Success (durable against power loss, slower). */
        fsync: z.boolean().default(false),
        /**
         * DICOM TLS on a port of its own (the plain port stays open): server certificate and key (PEM
         * files), the CAs that client certificates must chain to, and whether a client must present one.
         */
        tls: z
          .object({
            port: port.default(2762),
            /** Interface the TLS listener binds to (default: dicomHost). */
            host: z.string().optional(),
            cert: z.string().min(1),
            key: z.string().min(1),
            ca: z.string().min(1).optional(),
            verifyClient: z.boolean().default(false),
            minVersion: tlsVersionSchema.default("TLSv1.2"),
          })
          .strict()
          .refine(
            (t) => !t.verifyClient || t.ca !== undefined,
            "receiver.tls.verifyClient needs receiver.tls.ca",
          )
          .optional(),
      })
      .strict()
      .default({}),
    ingest: z
      .object({
        concurrency: z.number().int().min(1).max(256).default(64),
        /**
         * When the receiver shares the process (fiona start), ingest runs at concurrencyWhileReceiving
         * while associations are open, so C-STORE responses come first and ingest still uses what CPU
         * is left; at full concurrency again once they close.
         */
        yieldToReceiver: z.boolean().default(true),
        concurrencyWhileReceiving: z.number().int().min(1).max(256).default(1),
      })
      .strict()
      .default({}),
    /** Space on dataDir's file system as a resource of its own (src/fs/space.ts, src/roles/disk-full-retry.ts). */
    disk: z
      .object({
        /**
         * Free-space floor: max(minFreeBytes, minFreePercent of the file system). Below it the receiver
         * answers C-STORE with Out of Resources before writing, so the stages after it keep room for
         * raw links, series JSON and the outbox. Both 0 turn the floor off.
         */
        minFreeBytes: z.number().int().min(0).default(1_073_741_824), // 1 GiB
        minFreePercent: z.number().min(0).max(50).default(2),
        /**
         * A job of any stage that hits ENOSPC or EDQUOT waits this long, doubling per repeat up to
         * fullRetryMaxMs, without using one of its attempts.
         */
        fullRetryMs: z.number().int().min(10).max(3_600_000).default(10_000),
        fullRetryMaxMs: z.number().int().min(10).max(86_400_000).default(300_000),
      })
      .strict()
      .refine((d) => d.fullRetryMaxMs >= d.fullRetryMs, "disk.fullRetryMaxMs must be >= disk.fullRetryMs")
      .default({}),
    /**
     * Jobs each worker process runs at once, per queue (ingest and analysis have their own keys; the
     * queues that must run one job at a time are not configurable).
     */
    concurrency: z
      .object({
        arrival: jobsAtOnce(4),
        "study-arrived": jobsAtOnce(4),
        reclassify: jobsAtOnce(2),
        transfer: jobsAtOnce(4),
        deidentify: jobsAtOnce(2),
        send: jobsAtOnce(4),
        "redcap-push": jobsAtOnce(4),
        export: jobsAtOnce(2),
        sftp: jobsAtOnce(2),
        "scanner-pull": jobsAtOnce(4),
        automation: jobsAtOnce(4),
        wsi: jobsAtOnce(1),
      })
      .strict()
      .default({}),
    arrival: z
      .object({
        /**
         * A study counts as arrived after this many seconds without a new image received, once none
         * of its ingest jobs is waiting, delayed or active.
         */
        quietSeconds: z.number().positive().max(86_400).default(15),
        /** While a quiet study's ingest is behind, arrival looks again this often. */
        pollSeconds: z.number().min(0.05).max(60).default(0.5),
      })
      .strict()
      .default({}),
    /**
     * Job locks of every pipeline worker: a worker renews its jobs' locks every lockSeconds / 2; jobs
     * of a worker that stopped (crashed, killed) go back to waiting at the first stalled check (every
     * stalledCheckSeconds, by any worker of the queue) that finds their lock run out, having seen them
     * active at the check before. A job found stalled more than maxStalledCount times fails. An event
     * loop blocked for longer than about lockSeconds / 2 loses its locks too: the job then runs twice.
     */
    workers: z
      .object({
        lockSeconds: z.number().min(2).max(600).default(10),
        stalledCheckSeconds: z.number().min(1).max(600).default(5),
        maxStalledCount: z.number().int().min(0).max(100).default(2),
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
        /** Deprecated: an admin user like any other (prefer web.users or fiona user add). */
        basicAuth: z
          .object({ user: z.string().min(1), passwordHash: z.string().min(1) })
          .strict()
          .optional(),
        /**
         * Accounts of the web server (pages, API, Bull Board, /metrics), merged with those of
         * `<dataDir>/users.json` (fiona user add). A user sees and acts on only the projects listed in
         * `projects` (admins: every project). `role` is viewer, operator or admin; `admin: true` means
         * admin, and without either a user is an operator (as before roles existed). `passwordHash`
         * (fiona hash-password) enables the login form and HTTP basic auth for scripts; a user without
         * one can only sign in through trustedProxyHeader.
         */
        users: z
          .array(
            z
              .object({
                name: webUserName,
                passwordHash: z
                  .string()
                  .min(1)
                  .refine(isPasswordHash, "not a password hash: create one with fiona hash-password")
                  .optional(),
                admin: z.boolean().default(false),
                role: z.enum(ROLES).optional(),
                projects: z.array(z.string().min(1)).default([]),
              })
              .strict()
              .refine((u) => !u.admin || u.role === undefined || u.role === "admin", {
                message: "admin: true contradicts role; use role alone",
                path: ["role"],
              }),
          )
          .default([])
          .superRefine((us, ctx) => {
            const seen = new Set<string>();
            us.forEach((u, i) => {
              if (seen.has(u.name))
                ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate user ${u.name}` });
              seen.add(u.name);
            });
          }),
        /**
         * Name of a request header carrying the user name set by an authenticating reverse proxy
         * (e.g. "X-Forwarded-User"). Honoured only on connections from trustedProxies; the user must be
         * listed in web.users (for the grants).
         */
        trustedProxyHeader: z
          .string()
          .regex(/^[A-Za-z0-9-]+$/, "a header name")
          .optional(),
        /** Peer addresses allowed to set trustedProxyHeader (and X-Forwarded-Proto). */
        trustedProxies: z.array(z.string().min(1)).default(["127.0.0.1", "::1"]),
        /** Sessions of the Assign page end after this many minutes without user activity. */
        sessionMinutes: z.number().int().min(1).max(1440).default(30),
        /** Show patient name and ID (read from the series JSON on disk) in the Assign page and API. */
        showPatientIdentity: z.boolean().default(false),
        /** Bearer token Prometheus may scrape /metrics with (instead of a user), or a file holding it. */
        metricsToken: z.string().min(32, "use at least 32 characters").optional(),
        metricsTokenFile: z.string().min(1).optional(),
      })
      .strict()
      .refine((w) => !(w.metricsToken && w.metricsTokenFile), {
        message: "set web.metricsToken or web.metricsTokenFile, not both",
        path: ["metricsTokenFile"],
      })
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
          if (seen.has(p.name))
            ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate project ${p.name}` });
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
    incoming: z
      .object({
        /** The incoming list shows a study for this many days after its last image (data stays on disk). */
        retentionDays: z.number().positive().max(3650).default(7),
      })
      .strict()
      .default({}),
    routing: z
      .object({
        /** Evaluated on every arrival of a study; every matching rule starts a transfer. */
        rules: z.array(routingRuleSchema).default([]),
      })
      .strict()
      .default({}),
    coupling: z
      .object({
        /** Uploaded coupling-list rows are kept (and applied to arriving studies) for this many days. */
        expiryDays: z.number().positive().max(3650).default(30),
      })
      .strict()
      .default({}),
    /** REDCap integration; absent = no REDCap stages. */
    redcap: redcapSchema.optional(),
    /** Analysis jobs: algorithms run over project data, results sent back (src/analysis). */
    analysis: analysisSchema.default({}),
    /** ZIP/NIfTI exports, their SFTP destinations and their cleanup (src/export, src/sftp). */
    exports: exportsSchema.default({}),
    /** NoAssign forwarding: DICOM destinations other than the research PACS (src/export/noassign.ts). */
    noAssign: noAssignSchema.default({}),
    /** Job schedulers that replace the crontab, the heartbeat and disk cleanup (src/schedules). */
    schedules: schedulesSchema.default({}),
    /** MPPS SCP and C-FIND/C-MOVE pulls from scanners (src/scanner). */
    scanners: scannersSchema.default({}),
    /** Research-PACS inventory (C-FIND) and reconciliation (src/inventory). */
    inventory: inventorySchema.default({}),
    /** Event automation: triggers paired with webhook, e-mail or command actions (src/automation). */
    automation: automationSchema.default({}),
    /** Whole-slide pathology: uploads, TIFF/SVS to DICOM conversion (src/wsi). */
    wsi: wsiSchema.default({}),
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
export type RoutingRuleConfig = z.infer<typeof routingRuleSchema>;
export type AutoIdConfig = z.infer<typeof autoIdSchema>;
export type RedcapConfig = z.infer<typeof redcapSchema>;

/** The de-identification part of a project, as the engine takes it. */
export function deidSettings(project: ProjectConfig): ProjectDeid {
  // The engine's schema is strict: drop the keys that are not de-identification settings.
  const deid: ProjectDeid & Partial<Pick<ProjectConfig, "destination" | "autoId">> = { ...project };
  delete deid.destination;
  delete deid.autoId;
  return deid;
}
export type FionaConfigInput = z.input<typeof configSchema>;
