/** OpenAPI paths and schemas of the export routes (src/export/web.ts), merged into src/web/api/openapi.ts. */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
const error = (description: string) => json(ref("Error"), description);
const zip = (description: string) => ({
  description,
  content: { "application/zip": { schema: { type: "string", format: "binary" } } },
});
const csrf = {
  name: "X-CSRF-Token",
  in: "header",
  required: false,
  description: "Required with cookie sessions: the csrfToken of GET /api/session.",
  schema: { type: "string" },
};
const common = { 401: error("Not signed in"), 403: error("Refused (CSRF, cross-site, no grant)") };
const body = (name: string) => ({ required: true, content: { "application/json": { schema: ref(name) } } });

export const exportApiPaths = {
  "/api/exports": {
    get: {
      summary: "Export archives of the caller's projects, newest first, with size and download link",
      responses: { 200: json({ type: "array", items: ref("Export") }), ...common },
    },
    post: {
      summary: "Queue an export: the transfer's pseudonymized files, else the study pseudonymized now",
      parameters: [csrf],
      requestBody: body("ExportRequest"),
      responses: {
        202: json(ref("Export"), "Export queued"),
        400: error("Invalid request (pattern, event)"),
        ...common,
        404: error("No such project for this user"),
      },
    },
  },
  "/api/exports/{id}/download": {
    get: {
      summary: "Download a finished export (ZIP)",
      parameters: [
        { name: "id", in: "path", required: true, description: "Export id", schema: { type: "string" } },
      ],
      responses: {
        200: zip("The archive"),
        ...common,
        404: error("No such export for this user"),
        409: error("The export is not finished"),
      },
    },
  },
  "/api/noassign": {
    post: {
      summary: "NoAssign: pseudonymize a quarantine study with a project's profile and download it as a ZIP",
      description:
        "Nothing is sent to the research PACS. The archive (default layout) is also listed in GET /api/exports.",
      parameters: [csrf],
      requestBody: body("NoAssignRequest"),
      responses: {
        200: zip("The pseudonymized archive"),
        400: error("Invalid request, or no images"),
        ...common,
        404: error("No such project for this user"),
      },
    },
  },
  "/api/noassign/destinations": {
    get: {
      summary: "DICOM destinations NoAssign may forward to (configuration noAssign.destinations)",
      responses: { 200: json({ type: "array", items: ref("NoAssignDestination") }), ...common },
    },
  },
  "/api/noassign/forward": {
    post: {
      summary: "NoAssign: pseudonymize a quarantine study now and send it to a configured DICOM destination",
      description:
        "One association to the named destination (never the research PACS); the temporary files are removed afterwards.",
      parameters: [csrf],
      requestBody: body("NoAssignForwardRequest"),
      responses: {
        200: json(ref("NoAssignForwardResult"), "Sent (see the counts)"),
        400: error("Invalid request, unknown destination, or no images"),
        ...common,
        404: error("No such project for this user"),
        502: error("The destination refused the association or failed"),
      },
    },
  },
};

const noAssignProps = {
  studyInstanceUid: { type: "string" },
  project: { type: "string" },
  participant: { type: "string" },
  event: { type: ["string", "null"] },
};

export const exportApiSchemas = {
  NoAssignForwardRequest: {
    type: "object",
    required: ["studyInstanceUid", "project", "participant", "destination"],
    additionalProperties: false,
    properties: { ...noAssignProps, destination: { type: "string" } },
  },
  NoAssignForwardResult: {
    type: "object",
    required: ["destination", "files", "sent", "failed"],
    properties: {
      destination: { type: "string" },
      peer: { type: "string", description: "CALLED_AE@host:port" },
      files: { type: "integer" },
      series: { type: "integer" },
      sent: { type: "integer" },
      warnings: { type: "integer" },
      failed: { type: "integer" },
      elapsedMs: { type: "integer" },
    },
  },
  NoAssignDestination: {
    type: "object",
    required: ["name", "aeTitle"],
    properties: { name: { type: "string" }, aeTitle: { type: "string" } },
  },
  NoAssignRequest: {
    type: "object",
    required: ["studyInstanceUid", "project", "participant"],
    additionalProperties: false,
    properties: noAssignProps,
  },
  ExportRequest: {
    type: "object",
    required: ["studyInstanceUid", "project", "participant"],
    additionalProperties: false,
    properties: { ...noAssignProps, layout: { enum: ["DEFAULT", "PURE", "NIFTI"], default: "DEFAULT" } },
  },
  Export: {
    type: "object",
    required: ["id", "status", "project", "participant", "layout", "createdAt", "download"],
    properties: {
      id: { type: "string" },
      status: { enum: ["queued", "building", "done", "failed"] },
      studyInstanceUid: { type: "string" },
      project: { type: "string" },
      participant: { type: "string" },
      event: { type: ["string", "null"] },
      layout: { enum: ["DEFAULT", "PURE", "NIFTI"] },
      source: { enum: ["transfer", "quarantine"] },
      requestedBy: { type: "string" },
      createdAt: { type: "string", format: "date-time" },
      updatedAt: { type: "string", format: "date-time" },
      size: { type: ["integer", "null"] },
      sha256: { type: ["string", "null"], description: "SHA-256 (hex) of the archive" },
      fileName: { type: "string" },
      download: { type: ["string", "null"], description: "Download URL once done" },
      files: {
        type: "object",
        properties: { dicom: { type: "integer" }, nifti: { type: "integer" }, total: { type: "integer" } },
      },
      error: { type: "string" },
    },
  },
};
