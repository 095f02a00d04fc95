// @ts-check
// The JSON bodies of the REST API under /api as this page reads them (the contract: /api/openapi.json).
// Types only: the modules import them with JSDoc `@import`, so the browser never loads this file.

/** @typedef {"password" | "basic" | "proxy"} AuthVia */

/** @typedef {"viewer" | "operator" | "admin"} Role */

/**
 * Who is signed in: GET and POST /api/session.
 * @typedef {object} Session
 * @property {string} user
 * @property {Role} role
 * @property {boolean} admin
 * @property {string[]} projects
 * @property {AuthVia} via
 * @property {string | null} csrfToken Null when the caller has no cookie session (HTTP Basic).
 * @property {string} [expiresAt]
 * @property {number} sessionMinutes
 * @property {boolean} showPatientIdentity
 */

/**
 * How the site signs users in: the `login` of a 401 from GET /api/session.
 * @typedef {object} LoginInfo
 * @property {boolean} password
 * @property {boolean} proxy
 */

/**
 * Any error response; `errors` lists the problems of a rejected coupling list.
 * @typedef {object} ErrorBody
 * @property {string} error
 * @property {LoginInfo} [login]
 * @property {CsvError[]} [errors]
 * @property {string} [code] "reassign": the study was sent for the project as another participant.
 * @property {string[]} [participants] With code "reassign": those participants.
 */

/**
 * @typedef {object} CsvError
 * @property {number} line
 * @property {string} [column]
 * @property {string} message
 */

/**
 * @typedef {object} Destination
 * @property {string} aeTitle
 * @property {string} host
 * @property {number} port
 */

/**
 * A project granted to the user: GET /api/projects.
 * @typedef {object} Project
 * @property {string} name
 * @property {string} [participantPattern] A regular expression a participant id must match in full.
 * @property {string[]} events Empty when the event is free text.
 * @property {Destination | null} destination
 */

/**
 * A participant with earlier transfers: GET /api/projects/{project}/participants.
 * @typedef {object} Participant
 * @property {string} participant
 * @property {number} transfers
 * @property {string[]} events
 * @property {string} lastAt
 */

/**
 * GET /api/projects/{project}/participants/check.
 * @typedef {object} ParticipantCheck
 * @property {string} participant
 * @property {boolean} valid
 * @property {string} [message] Why the id is not valid.
 * @property {boolean} exists
 */

/** @typedef {"queued" | "done" | "partial" | "failed"} TransferStatus */

/**
 * A transfer of a study, as listed with the study.
 * @typedef {object} StudyTransferRef
 * @property {string} requestId
 * @property {string} project
 * @property {string} participant
 * @property {string} [event]
 * @property {TransferStatus} status
 */

/**
 * A study in the incoming list: GET /api/studies. Patient name and ID only when the site shows them.
 * @typedef {object} Study
 * @property {string} studyInstanceUid
 * @property {"receiving" | "arrived"} status
 * @property {string} [studyDate] YYYYMMDD
 * @property {string} [studyTime] HHMMSS
 * @property {string} [studyDescription]
 * @property {string} [accessionNumber]
 * @property {string} [patientName]
 * @property {string} [patientId]
 * @property {string} [callingAe]
 * @property {string} [calledAe]
 * @property {string[]} modalities
 * @property {number} seriesCount
 * @property {number} fileCount
 * @property {string} firstSeenAt
 * @property {string} lastSeenAt
 * @property {string} [arrivedAt]
 * @property {StudyTransferRef[]} transfers
 */

/**
 * @typedef {object} Series
 * @property {string} seriesInstanceUid
 * @property {string} [seriesNumber]
 * @property {string} [seriesDescription]
 * @property {string} [modality]
 * @property {string[]} classifyType
 * @property {number} numFiles
 */

/**
 * A study with its series: GET /api/studies/{studyInstanceUid}.
 * @typedef {Study & { series: Series[] }} StudyDetail
 */

/**
 * What the user chose to send, export or pseudonymize.
 * @typedef {object} Target
 * @property {string} studyInstanceUid
 * @property {string} project
 * @property {string} participant
 * @property {string} [event]
 * @property {boolean} [replace] Confirms a re-assignment to another participant.
 */

/** @typedef {"queued" | "deidentifying" | "sending" | "finishing" | "done" | "partial" | "failed"} LiveState */

/**
 * The live progress of a transfer's latest run.
 * @typedef {object} LiveStatus
 * @property {LiveState} state
 * @property {string} label
 * @property {number} series
 * @property {number} deidentified
 * @property {number} sent
 * @property {number} [percent] While sending.
 * @property {string} [retrying] Why a send waits for its next attempt.
 * @property {string} [reason] Why it failed.
 * @property {boolean} retryable
 */

/**
 * A transfer request: GET /api/transfers.
 * @typedef {object} Transfer
 * @property {string} requestId
 * @property {string} studyInstanceUid
 * @property {string} project
 * @property {string} participant
 * @property {string} [event]
 * @property {string} requestedBy
 * @property {string} createdAt
 * @property {string} updatedAt
 * @property {number} runs
 * @property {TransferStatus} status
 * @property {number} filesSent
 * @property {number} filesFailed
 * @property {number} filesDropped
 * @property {string} [error]
 * @property {string} [destination] "AE@host:port"
 * @property {{ studyDate?: string, studyDescription?: string, accessionNumber?: string }} study
 * @property {LiveStatus} live
 * @property {number} [durationMs] The latest run, from its start to its result recorded.
 * @property {StageTimings} [stages] Where the latest run's time went.
 */

/**
 * The jobs of one stage of a run (one per series).
 * @typedef {object} StageJobs
 * @property {number} jobs
 * @property {number} sumMs Processing time added up.
 * @property {number} maxMs The longest job.
 * @property {number} spanMs Wall time: first job's start to last job's end.
 */

/**
 * @typedef {object} StageTimings
 * @property {number} queueWaitMs Run started → its first job started.
 * @property {StageJobs} deidentify
 * @property {StageJobs} send
 * @property {number} bookkeepingMs Last send finished → the run's result recorded.
 */

/**
 * What an assignment would send, and where: GET /api/transfers/preview.
 * @typedef {object} TransferPreview
 * @property {string} requestId
 * @property {StudyDetail} study
 * @property {string} project
 * @property {string} participant
 * @property {string} [event]
 * @property {Destination} destination
 * @property {number} seriesCount Series on disk.
 * @property {number} fileCount Images on disk.
 * @property {boolean} newParticipant
 * @property {Transfer | null} existing
 * @property {string[]} warnings
 */

/**
 * POST /api/transfers and POST /api/transfers/{requestId}/retry.
 * @typedef {object} StartedTransfer
 * @property {string} requestId
 * @property {number} run
 * @property {number} series
 */

/**
 * @typedef {object} CouplingRow
 * @property {number} line
 * @property {string} [accessionNumber]
 * @property {string} [studyInstanceUid]
 * @property {string} project
 * @property {string} participant
 * @property {string} [event]
 */

/** @typedef {"started" | "exists" | "planned" | "pending-arrival" | "invalid" | "error"} CouplingOutcome */

/**
 * A study the list matches now, and what happens to it.
 * @typedef {object} CouplingMatch
 * @property {string} studyInstanceUid
 * @property {string} project
 * @property {string} participant
 * @property {string} [event]
 * @property {string} requestId
 * @property {CouplingOutcome} status
 * @property {string} [error]
 * @property {string} [studyDate]
 * @property {string} [studyDescription]
 * @property {string} [accessionNumber]
 */

/**
 * POST /api/coupling (with ?dryRun=true: the preview).
 * @typedef {object} CouplingResult
 * @property {boolean} dryRun
 * @property {CouplingRow[]} rows
 * @property {number} stored
 * @property {CouplingMatch[]} matches
 */

/** @typedef {"DEFAULT" | "PURE" | "NIFTI"} ExportLayout */
/** @typedef {"queued" | "building" | "done" | "failed"} ExportStatus */

/**
 * An export archive: GET and POST /api/exports.
 * @typedef {object} ExportRecord
 * @property {string} id
 * @property {ExportStatus} status
 * @property {string} studyInstanceUid
 * @property {string} project
 * @property {string} participant
 * @property {string | null} event
 * @property {ExportLayout} layout
 * @property {"transfer" | "received"} source
 * @property {string} requestedBy
 * @property {string} createdAt
 * @property {string} updatedAt
 * @property {number | null} size Bytes, once built.
 * @property {string | null} sha256
 * @property {string} fileName
 * @property {string | null} download The archive's URL once built.
 * @property {{ dicom: number, nifti: number, total: number }} [files]
 * @property {string} [error]
 */

/**
 * A DICOM node NoAssign may forward to: GET /api/noassign/destinations.
 * @typedef {object} NoAssignDestination
 * @property {string} name
 * @property {string} aeTitle
 */

/**
 * POST /api/noassign/forward.
 * @typedef {object} NoAssignForwardResult
 * @property {string} destination
 * @property {string} peer "CALLED_AE@host:port"
 * @property {number} files
 * @property {number} series
 * @property {number} sent
 * @property {number} warnings
 * @property {number} failed
 * @property {number} elapsedMs
 */

/**
 * GET /api/failures: one stage's quarantine record (identifiers only).
 * @typedef {object} QuarantineRecord
 * @property {string} id
 * @property {string} stage
 * @property {string} reason
 * @property {{ studyInstanceUid?: string, seriesInstanceUid?: string, sopInstanceUid?: string,
 *   requestId?: string, run?: number, project?: string, participant?: string, uploadId?: string,
 *   exportId?: string, subscription?: string, file?: string }} ids
 * @property {number} [files]
 * @property {string} firstAt
 * @property {string} lastAt
 * @property {number} count
 */

/**
 * GET /api/audit.
 * @typedef {object} AuditEntry
 * @property {string} id
 * @property {string} at
 * @property {string} user
 * @property {string} action
 * @property {string} [via]
 * @property {string} [ip]
 * @property {string} [study]
 * @property {string} [project]
 * @property {string} [participant]
 * @property {string} [event]
 * @property {string} [requestId]
 * @property {number} [run]
 * @property {string} [queue] Bull Board actions: the queue,
 * @property {string} [jobId] the job,
 * @property {number} [status] and the HTTP status of the answer.
 * @property {string} [detail]
 */

export {};
