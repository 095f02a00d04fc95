/**
 * The OpenAPI 3.1 description of the REST API, served at /api/openapi.json. Keep it in step with
 * ./index.ts (a test checks that every route is documented).
 */

import { exportApiPaths, exportApiSchemas } from "../../export/openapi.js";
import { inventoryApiPaths } from "../../inventory/openapi.js";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
const error = (description: string) => json(ref("Error"), description);
const q = (name: string, description: string, schema: unknown = { type: "string" }, required = false) => ({
  name,
  in: "query",
  required,
  description,
  schema,
});
const p = (name: string, description: string) => ({
  name,
  in: "path",
  required: true,
  description,
  schema: { type: "string" },
});

const csrf = {
  name: "X-CSRF-Token",
  in: "header",
  required: false,
  description: "Required with cookie sessions: the csrfToken of GET /api/session.",
  schema: { type: "string" },
};

const common401 = { 401: error("Not signed in"), 403: error("Refused (CSRF, cross-site, no grant)") };

export function openApiDocument(version = "0.1.0"): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "FIONA Assign API",
      version,
      description: [
        "Everything the Assign page does: list the quarantine, assign studies to a project's participant",
        "and event, follow transfers, retry them, read the audit log.",
        "",
        "Authentication: an `Authorization: Basic` header with a web.users account (scripts), the session",
        "cookie of POST /api/session (the page), or a trusted reverse-proxy header.",
        "",
        "CSRF: every POST/PUT/DELETE must not be cross-site; with a cookie session it must carry",
        "`X-CSRF-Token` (from GET /api/session); with basic auth it must send `Content-Type: application/json`.",
        "",
        "Sessions end after web.sessionMinutes without activity; requests with `X-Fiona-Poll: 1` (background",
        "refreshes) do not count as activity.",
        "",
        "Grants: a user sees and assigns only the projects granted to them in web.users (admins: all).",
        "Transfers of other projects answer 404. Patient name and ID appear only when the site enables",
        "web.showPatientIdentity.",
      ].join("\n"),
    },
    servers: [{ url: "/" }],
    security: [{ basic: [] }, { session: [] }],
    paths: {
      "/api/openapi.json": {
        get: { summary: "This document", security: [], responses: { 200: json({ type: "object" }) } },
      },
      "/api/session": {
        get: {
          summary: "Who is signed in; the CSRF token for writes",
          description:
            "On a site without accounts, or behind a trusted proxy, this also opens a session (Set-Cookie).",
          responses: { 200: json(ref("Session")), 401: json(ref("LoginRequired"), "Not signed in") },
        },
        post: {
          summary: "Sign in with a user name and password (sets the session cookie)",
          security: [],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["user", "password"],
                  properties: { user: { type: "string" }, password: { type: "string" } },
                },
              },
            },
          },
          responses: {
            200: json(ref("Session")),
            401: error("Wrong user name or password"),
            429: error("Too many attempts"),
          },
        },
        delete: {
          summary: "Sign out",
          parameters: [csrf],
          responses: { 204: { description: "Signed out" }, ...common401 },
        },
      },
      "/api/projects": {
        get: {
          summary: "Projects the caller may assign to",
          responses: { 200: json({ type: "array", items: ref("Project") }), ...common401 },
        },
      },
      "/api/projects/{project}/participants": {
        get: {
          summary: "Participants that already have transfers in the project",
          parameters: [p("project", "Project name")],
          responses: {
            200: json({ type: "array", items: ref("Participant") }),
            ...common401,
            404: error("No such project, or not granted"),
          },
        },
      },
      "/api/projects/{project}/participants/check": {
        get: {
          summary: "Check a participant id against the project's pattern",
          parameters: [
            p("project", "Project name"),
            q("participant", "Participant id", { type: "string" }, true),
          ],
          responses: {
            200: json({
              type: "object",
              required: ["participant", "valid", "exists"],
              properties: {
                participant: { type: "string" },
                valid: { type: "boolean" },
                message: { type: "string" },
                exists: { type: "boolean", description: "The participant already has transfers" },
              },
            }),
            ...common401,
            404: error("No such project, or not granted"),
          },
        },
      },
      "/api/studies": {
        get: {
          summary: "The quarantine list, newest first",
          parameters: [
            q(
              "q",
              "Free text: accession number, descriptions, AE titles, modality, StudyInstanceUID, participant",
            ),
            q("from", "Study date from (YYYYMMDD or YYYY-MM-DD), inclusive (alias studyDateFrom)"),
            q("to", "Study date to, inclusive (alias studyDateTo)"),
            q("seenFrom", "Last image received at or after (ISO date/time or epoch ms)"),
            q("seenTo", "Last image received at or before (a bare date means the end of that day, UTC)"),
            q("accession", "Accession number contains"),
            q("description", "Study or series description contains"),
            q("ae", "Calling or called AE title contains (alias aeTitle)"),
            q("modality", "One of the study's modalities"),
            q("status", "receiving or arrived", { type: "string", enum: ["receiving", "arrived"] }),
            q("assigned", "Filter by assignment", {
              type: "string",
              enum: ["all", "assigned", "unassigned"],
            }),
            q("limit", "At most this many (default 500)", { type: "integer", minimum: 1, maximum: 5000 }),
          ],
          responses: { 200: json({ type: "array", items: ref("Study") }), ...common401 },
        },
      },
      "/api/studies/{studyInstanceUid}": {
        get: {
          summary: "One study with its series",
          parameters: [p("studyInstanceUid", "StudyInstanceUID")],
          responses: { 200: json(ref("StudyDetail")), ...common401, 404: error("Unknown study") },
        },
      },
      "/api/transfers": {
        get: {
          summary: "Transfer history with live status (visible projects only), newest first",
          parameters: [
            q("project", "Only this project"),
            q("study", "Only this StudyInstanceUID"),
            q("limit", "At most this many (default 100)", { type: "integer", minimum: 1, maximum: 1000 }),
          ],
          responses: { 200: json({ type: "array", items: ref("Transfer") }), ...common401 },
        },
        post: {
          summary: "Assign a study: start its transfer to the project's research PACS",
          parameters: [csrf],
          requestBody: { required: true, content: { "application/json": { schema: ref("AssignRequest") } } },
          responses: {
            202: json(ref("Started"), "Transfer started"),
            400: error("Invalid request (pattern, event, no images)"),
            ...common401,
            409: error("This assignment is running already"),
          },
        },
      },
      "/api/transfers/preview": {
        get: {
          summary: "What an assignment would send where (the confirmation), without starting it",
          parameters: [
            q("study", "StudyInstanceUID", { type: "string" }, true),
            q("project", "Project", { type: "string" }, true),
            q("participant", "Participant", { type: "string" }, true),
            q("event", "Event"),
          ],
          responses: { 200: json(ref("Preview")), 400: error("Invalid request"), ...common401 },
        },
      },
      "/api/transfers/{requestId}": {
        get: {
          summary: "One transfer with live status",
          parameters: [p("requestId", "Transfer request id")],
          responses: { 200: json(ref("Transfer")), ...common401, 404: error("Unknown, or not granted") },
        },
      },
      "/api/transfers/{requestId}/retry": {
        post: {
          summary: "Run a transfer again (sends what the destination has not accepted yet)",
          parameters: [p("requestId", "Transfer request id"), csrf],
          responses: {
            202: json(ref("Started"), "Transfer started"),
            ...common401,
            404: error("Unknown, or not granted"),
            409: error("Still running"),
          },
        },
      },
      ...exportApiPaths,
      ...inventoryApiPaths,
      "/api/audit": {
        get: {
          summary: "Audit log, newest first (admins: everything; others: their projects)",
          parameters: [
            q("limit", "At most this many (default 100)", { type: "integer", minimum: 1, maximum: 1000 }),
            q("before", "Only entries older than this id (paging)"),
          ],
          responses: { 200: json({ type: "array", items: ref("AuditEntry") }), ...common401 },
        },
      },
      "/api/coupling": {
        post: {
          summary: "Upload a coupling list (CSV); with dryRun=true only preview what it would match",
          description:
            "Columns AccessionNumber, ProjectName, subjectid, eventname (optional StudyInstanceUID). Every row must " +
            "name a project granted to the caller (403 otherwise). All or nothing: a list with problems stores nothing. " +
            "Rows are kept for coupling.expiryDays and applied to studies that arrive later.",
          parameters: [q("dryRun", "Preview only", { type: "boolean" }), csrf],
          requestBody: { required: true, content: { "text/csv": { schema: { type: "string" } } } },
          responses: {
            200: json(ref("CouplingResult")),
            400: json(
              {
                type: "object",
                properties: {
                  error: { type: "string" },
                  errors: {
                    type: "array",
                    items: {
                      type: "object",
                      properties: {
                        line: { type: "integer" },
                        column: { type: "string" },
                        message: { type: "string" },
                      },
                    },
                  },
                },
              },
              "The list has problems (with line numbers); nothing was stored",
            ),
            ...common401,
          },
        },
      },
    },
    components: {
      securitySchemes: {
        basic: { type: "http", scheme: "basic" },
        session: { type: "apiKey", in: "cookie", name: "fiona_session" },
      },
      schemas: {
        Error: { type: "object", required: ["error"], properties: { error: { type: "string" } } },
        ...exportApiSchemas,
        LoginRequired: {
          type: "object",
          required: ["error", "login"],
          properties: {
            error: { type: "string" },
            login: {
              type: "object",
              properties: { password: { type: "boolean" }, proxy: { type: "boolean" } },
            },
          },
        },
        Session: {
          type: "object",
          required: ["user", "admin", "projects", "csrfToken", "via"],
          properties: {
            user: { type: "string" },
            admin: { type: "boolean" },
            projects: { type: "array", items: { type: "string" } },
            csrfToken: { type: ["string", "null"] },
            via: { type: "string", enum: ["password", "basic", "proxy", "open"] },
            expiresAt: { type: "string", format: "date-time" },
            sessionMinutes: { type: "integer" },
            showPatientIdentity: { type: "boolean" },
          },
        },
        Destination: {
          type: "object",
          properties: { aeTitle: { type: "string" }, host: { type: "string" }, port: { type: "integer" } },
        },
        Project: {
          type: "object",
          required: ["name", "events"],
          properties: {
            name: { type: "string" },
            participantPattern: { type: "string" },
            events: { type: "array", items: { type: "string" } },
            destination: { oneOf: [ref("Destination"), { type: "null" }] },
          },
        },
        Participant: {
          type: "object",
          properties: {
            participant: { type: "string" },
            transfers: { type: "integer" },
            events: { type: "array", items: { type: "string" } },
            lastAt: { type: "string", format: "date-time" },
          },
        },
        StudyTransferRef: {
          type: "object",
          properties: {
            requestId: { type: "string" },
            project: { type: "string" },
            participant: { type: "string" },
            event: { type: "string" },
            status: { type: "string" },
          },
        },
        Study: {
          type: "object",
          properties: {
            studyInstanceUid: { type: "string" },
            status: { type: "string", enum: ["receiving", "arrived"] },
            studyDate: { type: "string", description: "YYYYMMDD" },
            studyTime: { type: "string" },
            studyDescription: { type: "string" },
            accessionNumber: { type: "string" },
            patientName: { type: "string", description: "Only with web.showPatientIdentity" },
            patientId: { type: "string", description: "Only with web.showPatientIdentity" },
            callingAe: { type: "string" },
            calledAe: { type: "string" },
            modalities: { type: "array", items: { type: "string" } },
            seriesCount: { type: "integer" },
            fileCount: { type: "integer" },
            firstSeenAt: { type: "string", format: "date-time" },
            lastSeenAt: { type: "string", format: "date-time" },
            arrivedAt: { type: "string", format: "date-time" },
            transfers: { type: "array", items: ref("StudyTransferRef") },
          },
        },
        Series: {
          type: "object",
          properties: {
            seriesInstanceUid: { type: "string" },
            seriesNumber: { type: "string" },
            seriesDescription: { type: "string" },
            modality: { type: "string" },
            classifyType: { type: "array", items: { type: "string" } },
            numFiles: { type: "integer" },
          },
        },
        StudyDetail: {
          allOf: [
            ref("Study"),
            { type: "object", properties: { series: { type: "array", items: ref("Series") } } },
          ],
        },
        AssignRequest: {
          type: "object",
          required: ["studyInstanceUid", "project", "participant"],
          properties: {
            studyInstanceUid: { type: "string" },
            project: { type: "string" },
            participant: { type: "string" },
            event: { type: "string" },
          },
        },
        Started: {
          type: "object",
          properties: {
            requestId: { type: "string" },
            run: { type: "integer" },
            series: { type: "integer" },
          },
        },
        Preview: {
          type: "object",
          properties: {
            requestId: { type: "string" },
            study: ref("StudyDetail"),
            project: { type: "string" },
            participant: { type: "string" },
            event: { type: "string" },
            destination: ref("Destination"),
            seriesCount: { type: "integer", description: "Series on disk that will be sent" },
            fileCount: { type: "integer", description: "Files on disk that will be sent" },
            newParticipant: { type: "boolean" },
            existing: { oneOf: [ref("Transfer"), { type: "null" }] },
            warnings: { type: "array", items: { type: "string" } },
          },
        },
        LiveStatus: {
          type: "object",
          properties: {
            state: {
              type: "string",
              enum: ["queued", "deidentifying", "sending", "finishing", "done", "partial", "failed"],
            },
            label: { type: "string" },
            series: { type: "integer" },
            deidentified: { type: "integer" },
            sent: { type: "integer" },
            percent: { type: "integer" },
            retrying: { type: "string" },
            reason: { type: "string" },
            retryable: { type: "boolean" },
          },
        },
        Transfer: {
          type: "object",
          properties: {
            requestId: { type: "string" },
            studyInstanceUid: { type: "string" },
            project: { type: "string" },
            participant: { type: "string" },
            event: { type: "string" },
            requestedBy: { type: "string" },
            createdAt: { type: "string", format: "date-time" },
            updatedAt: { type: "string", format: "date-time" },
            runs: { type: "integer" },
            status: { type: "string", enum: ["queued", "done", "partial", "failed"] },
            filesSent: { type: "integer" },
            filesFailed: { type: "integer" },
            filesDropped: { type: "integer" },
            sourceFiles: { type: "integer" },
            error: { type: "string" },
            pseudoStudyInstanceUid: { type: "string" },
            destination: { type: "string", description: "AE@host:port" },
            study: {
              type: "object",
              properties: {
                studyDate: { type: "string" },
                studyDescription: { type: "string" },
                accessionNumber: { type: "string" },
              },
            },
            live: ref("LiveStatus"),
          },
        },
        CouplingResult: {
          type: "object",
          properties: {
            dryRun: { type: "boolean" },
            stored: { type: "integer" },
            rows: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  line: { type: "integer" },
                  accessionNumber: { type: "string" },
                  studyInstanceUid: { type: "string" },
                  project: { type: "string" },
                  participant: { type: "string" },
                  event: { type: "string" },
                },
              },
            },
            matches: {
              type: "array",
              description:
                "Studies in the quarantine list the rows match, and what happened (or would happen)",
              items: {
                type: "object",
                properties: {
                  studyInstanceUid: { type: "string" },
                  studyDate: { type: "string" },
                  studyDescription: { type: "string" },
                  accessionNumber: { type: "string" },
                  project: { type: "string" },
                  participant: { type: "string" },
                  event: { type: "string" },
                  requestId: { type: "string" },
                  status: {
                    type: "string",
                    enum: ["started", "exists", "planned", "pending-arrival", "invalid", "error"],
                  },
                  run: { type: "integer" },
                  error: { type: "string" },
                },
              },
            },
          },
        },
        AuditEntry: {
          type: "object",
          properties: {
            id: { type: "string" },
            at: { type: "string", format: "date-time" },
            user: { type: "string" },
            action: { type: "string" },
            via: { type: "string" },
            ip: { type: "string" },
            study: { type: "string" },
            project: { type: "string" },
            participant: { type: "string" },
            event: { type: "string" },
            requestId: { type: "string" },
            run: { type: "integer" },
            detail: { type: "string" },
          },
        },
      },
    },
  };
}
