/**
 * The OpenAPI 3.1 description of the REST API, served at /api/openapi.json: generated from the
 * routes declared in the registry (./routes.ts) and the zod schemas they validate requests with.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from "@asteasolutions/zod-to-openapi";
import { error, ok } from "./replies.js";
import type { ApiRoutes, DeclaredRoute, Reply } from "./routes.js";
import { z } from "./zod.js";

const DESCRIPTION = [
  "Everything the Assign page does: list incoming studies, assign studies to a project's participant",
  "and event, follow transfers, retry them, read the audit log.",
  "",
  "Authentication: an `Authorization: Basic` header with a web user's account (scripts), the session",
  "cookie of POST /api/session (the page), or a trusted reverse-proxy header. Nobody is signed in",
  "without one of them.",
  "",
  "Roles: viewers read only (every POST/PUT/DELETE but sign-out answers 403); operators act in their",
  "projects; admins in every project.",
  "",
  "CSRF: every POST/PUT/DELETE must not be cross-site; with a cookie session it must carry",
  "`X-CSRF-Token` (from GET /api/session); with basic auth it must send `Content-Type: application/json`.",
  "",
  "Sessions end after web.sessionMinutes without activity; requests with `X-Fiona-Poll: 1` (background",
  "refreshes) do not count as activity.",
  "",
  "Grants: a user sees and acts on only the projects granted to them (admins: all).",
  "Transfers of other projects answer 404. Patient name and ID appear only when the site enables",
  "web.showPatientIdentity.",
].join("\n");

const csrfHeader = z.object({
  "X-CSRF-Token": z
    .string()
    .optional()
    .describe("Required with cookie sessions: the csrfToken of GET /api/session."),
});

const binary = { type: "string", format: "binary" } as const;

/** What every route behind sign-in may answer besides its own. */
const signedIn: Record<number, Reply> = {
  401: error("Not signed in"),
  403: error("Refused (CSRF, cross-site, no grant, viewer)"),
};

function response(r: Reply) {
  return {
    description: r.description,
    ...(r.schema ? { content: { [r.type ?? "application/json"]: { schema: r.schema } } } : {}),
  };
}

function requestBody(r: DeclaredRoute) {
  if (r.body) return { required: true, content: { [r.bodyType ?? "application/json"]: { schema: r.body } } };
  if (r.streamed) return { required: true, content: { [r.streamed]: { schema: binary } } };
  return undefined;
}

function operation(r: DeclaredRoute): RouteConfig {
  const body = requestBody(r);
  const writes = r.method !== "get";
  const responses = { ...(r.public ? {} : signedIn), ...r.responses };
  type RequestConfig = NonNullable<RouteConfig["request"]>;
  return {
    method: r.method,
    path: r.openApiPath,
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    ...(r.public ? { security: [] } : {}),
    request: {
      ...(r.params ? { params: r.params } : {}),
      ...(r.query ? { query: r.query as RequestConfig["query"] } : {}),
      ...(writes && !r.public ? { headers: csrfHeader } : {}),
      ...(body ? { body } : {}),
    },
    responses: Object.fromEntries(
      Object.entries(responses).map(([status, reply]) => [status, response(reply)]),
    ),
  };
}

function openApiDocument(routes: readonly DeclaredRoute[], version = "0.1.0"): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", "basic", { type: "http", scheme: "basic" });
  registry.registerComponent("securitySchemes", "session", {
    type: "apiKey",
    in: "cookie",
    name: "fiona_session",
  });
  for (const r of routes) registry.registerPath(operation(r));
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: { title: "FIONA Assign API", version, description: DESCRIPTION },
    servers: [{ url: "/" }],
    security: [{ basic: [] }, { session: [] }],
  }) as unknown as Record<string, unknown>;
}

/** GET /openapi.json, generated on first request, once every route is registered. */
export function registerOpenApiRoute(api: ApiRoutes): void {
  let doc: Record<string, unknown> | undefined;
  api.route(
    {
      method: "get",
      path: "/openapi.json",
      summary: "This document",
      public: true,
      responses: { 200: ok(z.record(z.unknown())) },
    },
    (_req, res) => {
      doc ??= openApiDocument(api.all);
      res.json(doc);
    },
  );
}
