/** The shapes of the API's answers, as /api/openapi.json describes them. */
import { z } from "./zod.js";
import { ROLES } from "../roles.js";

/**
 * `schema` or null. `.nullable()` of a named schema is documented as a bare $ref (without the null);
 * a union documents it as anyOf [$ref, null].
 */
const orNull = (schema: z.ZodTypeAny) => z.union([schema, z.null()]);

const time = z.string().datetime();
const int = z.number().int();
const strings = z.array(z.string());

export const LoginRequired = z
  .object({
    error: z.string(),
    login: z.object({ password: z.boolean().optional(), proxy: z.boolean().optional() }),
  })
  .openapi("LoginRequired");

export const Session = z
  .object({
    user: z.string(),
    role: z.enum(ROLES),
    admin: z.boolean(),
    projects: strings,
    csrfToken: z.string().nullable(),
    via: z.enum(["password", "basic", "proxy"]),
    expiresAt: time.optional(),
    sessionMinutes: int.optional(),
    showPatientIdentity: z.boolean().optional(),
  })
  .openapi("Session");

const Destination = z
  .object({ aeTitle: z.string(), host: z.string(), port: int })
  .partial()
  .openapi("Destination");

export const Project = z
  .object({
    name: z.string(),
    participantPattern: z.string().optional(),
    events: strings,
    destination: orNull(Destination),
  })
  .openapi("Project");

export const Participant = z
  .object({ participant: z.string(), transfers: int, events: strings, lastAt: time })
  .partial()
  .openapi("Participant");

export const ParticipantCheck = z.object({
  participant: z.string(),
  valid: z.boolean(),
  message: z.string().optional(),
  exists: z.boolean().describe("The participant already has transfers"),
});

const StudyTransferRef = z
  .object({
    requestId: z.string(),
    project: z.string(),
    participant: z.string(),
    event: z.string(),
    status: z.string(),
  })
  .partial()
  .openapi("StudyTransferRef");

export const Study = z
  .object({
    studyInstanceUid: z.string(),
    status: z.enum(["receiving", "arrived"]),
    studyDate: z.string().describe("YYYYMMDD"),
    studyTime: z.string(),
    studyDescription: z.string(),
    accessionNumber: z.string().describe("Only with web.showPatientIdentity"),
    patientName: z.string().describe("Only with web.showPatientIdentity"),
    patientId: z.string().describe("Only with web.showPatientIdentity"),
    callingAe: z.string(),
    calledAe: z.string(),
    modalities: strings,
    seriesCount: int,
    fileCount: int,
    firstSeenAt: time,
    lastSeenAt: time,
    arrivedAt: time,
    transfers: z.array(StudyTransferRef),
  })
  .partial()
  .openapi("Study");

const Series = z
  .object({
    seriesInstanceUid: z.string(),
    seriesNumber: z.string(),
    seriesDescription: z.string(),
    modality: z.string(),
    classifyType: strings,
    numFiles: int,
  })
  .partial()
  .openapi("Series");

export const StudyDetail = Study.extend({ series: z.array(Series).optional() }).openapi("StudyDetail");

export const Started = z
  .object({ requestId: z.string(), run: int, series: int })
  .partial()
  .openapi("Started");

const LiveStatus = z
  .object({
    state: z.enum(["queued", "deidentifying", "sending", "finishing", "done", "partial", "failed"]),
    label: z.string(),
    series: int,
    deidentified: int,
    sent: int,
    percent: int,
    retrying: z.string(),
    reason: z.string(),
    retryable: z.boolean(),
  })
  .partial()
  .openapi("LiveStatus");

const StageJobs = z.object({
  jobs: int,
  sumMs: int.describe("Processing time of the jobs, added up"),
  maxMs: int.describe("The longest job"),
  spanMs: int.describe("Wall time: first job's start to last job's end"),
});

export const StageTimings = z
  .object({
    queueWaitMs: int.describe("Run started → its first job started"),
    deidentify: StageJobs,
    send: StageJobs,
    bookkeepingMs: int.describe("Last send finished → the run's result recorded"),
  })
  .openapi("StageTimings");

export const Transfer = z
  .object({
    requestId: z.string(),
    studyInstanceUid: z.string(),
    project: z.string(),
    participant: z.string(),
    event: z.string(),
    requestedBy: z.string(),
    createdAt: time,
    updatedAt: time,
    runs: int,
    status: z.enum(["queued", "done", "partial", "failed"]),
    filesSent: int,
    filesFailed: int,
    filesDropped: int,
    sourceFiles: int,
    durationMs: int.describe("The latest run, from its start to its result recorded"),
    stages: StageTimings.describe("Where the latest run's time went"),
    error: z.string(),
    pseudoStudyInstanceUid: z.string(),
    destination: z.string().describe("AE@host:port"),
    study: z
      .object({ studyDate: z.string(), studyDescription: z.string(), accessionNumber: z.string() })
      .partial(),
    live: LiveStatus,
  })
  .partial()
  .openapi("Transfer");

export const Preview = z
  .object({
    requestId: z.string(),
    study: StudyDetail,
    project: z.string(),
    participant: z.string(),
    event: z.string(),
    destination: Destination,
    seriesCount: int.describe("Series on disk that will be sent"),
    fileCount: int.describe("Files on disk that will be sent"),
    newParticipant: z.boolean(),
    existing: orNull(Transfer),
    warnings: strings,
  })
  .partial()
  .openapi("Preview");

export const CouplingResult = z
  .object({
    dryRun: z.boolean(),
    stored: int,
    rows: z.array(
      z
        .object({
          line: int,
          accessionNumber: z.string(),
          studyInstanceUid: z.string(),
          project: z.string(),
          participant: z.string(),
          event: z.string(),
        })
        .partial(),
    ),
    matches: z
      .array(
        z
          .object({
            studyInstanceUid: z.string(),
            studyDate: z.string(),
            studyDescription: z.string(),
            accessionNumber: z.string(),
            project: z.string(),
            participant: z.string(),
            event: z.string(),
            requestId: z.string(),
            status: z.enum(["started", "exists", "planned", "pending-arrival", "invalid", "error"]),
            run: int,
            error: z.string(),
          })
          .partial(),
      )
      .describe("Studies in the incoming list the rows match, and what happened (or would happen)"),
  })
  .partial()
  .openapi("CouplingResult");

export const CouplingProblems = z
  .object({
    error: z.string(),
    errors: z.array(z.object({ line: int, column: z.string(), message: z.string() }).partial()),
  })
  .partial();

export const AuditEntry = z
  .object({
    id: z.string(),
    at: time,
    user: z.string(),
    action: z.string(),
    via: z.string(),
    ip: z.string(),
    study: z.string(),
    project: z.string(),
    participant: z.string(),
    event: z.string(),
    requestId: z.string(),
    run: int,
    queue: z.string(),
    jobId: z.string(),
    status: int,
    detail: z.string(),
  })
  .partial()
  .openapi("AuditEntry");

export const QuarantineRecordSchema = z
  .object({
    id: z.string(),
    stage: z.string(),
    reason: z.string(),
    ids: z
      .object({
        studyInstanceUid: z.string(),
        seriesInstanceUid: z.string(),
        sopInstanceUid: z.string(),
        requestId: z.string(),
        run: int,
        project: z.string(),
        participant: z.string(),
        uploadId: z.string(),
        exportId: z.string(),
        subscription: z.string(),
        file: z.string(),
      })
      .partial(),
    files: int.optional(),
    firstAt: time,
    lastAt: time,
    count: int,
  })
  .openapi("QuarantineRecord");

export const RetryOutcomeSchema = z
  .object({
    kind: z.enum(["transfer", "job", "dismissed"]),
    requestId: z.string().optional(),
    run: int.optional(),
    queue: z.string().optional(),
    jobId: z.string().optional(),
  })
  .openapi("QuarantineOutcome");
