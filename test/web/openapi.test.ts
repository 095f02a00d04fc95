/**
 * /api/openapi.json against the running server: it is structurally OpenAPI 3.1, it lists exactly the
 * routes the express app registers under /api, and the server enforces what it documents (sign-in,
 * required and rejected request bodies and parameters).
 */
import type { RequestListener } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createRedis } from "../../src/queues/connection.js";
import { hashPassword } from "../../src/web/password.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { basic, captureLogger, deletePrefix, REDIS_URL, testConfig, uniquePrefix } from "./helpers.js";

/** The express app startWeb builds, caught on its way into the HTTP server. */
const captured = vi.hoisted(() => ({ apps: [] as RequestListener[] }));
vi.mock("node:http", async (importOriginal) => {
  const http = await importOriginal<typeof import("node:http")>();
  return {
    ...http,
    createServer: (app: RequestListener) => {
      captured.apps.push(app);
      return http.createServer(app);
    },
  };
});

/** Served by server.ts itself with the dashboard's web.basicAuth, beside the API router: not part of this API. */
const OUTSIDE_THE_API = ["GET /api/status"];

const PW = "alice-pw-1";
const prefix = uniquePrefix();
const dataDir = mkdtempSync(path.join(tmpdir(), "fiona-openapi-"));
const cfg = testConfig(prefix, {
  dataDir,
  secret: "openapi-secret-0123456789",
  projects: [{ name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline"] }, { name: "OTHER" }],
  web: { users: [{ name: "alice", passwordHash: hashPassword(PW, { N: 2 ** 10 }), projects: ["PROJ"] }] },
});
const { logger } = captureLogger();
const asAlice = { Authorization: basic("alice", PW) };
let redis: Redis;
let web: WebHandle;
let doc: OpenApi;

type Json = Record<string, unknown>;
interface Operation {
  security?: Array<Record<string, unknown>>;
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Json }>;
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, { description?: string }>;
}
interface OpenApi {
  openapi: string;
  info: { title: string; version: string };
  security: Array<Record<string, unknown>>;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}
interface ListedRoute {
  path: unknown;
  methods?: string[];
  router?: { listRoutes(): ListedRoute[] };
}

const operations = () =>
  Object.entries(doc.paths).flatMap(([p, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path: p, op })),
  );

/** "METHOD /api/x/{id}" for every route of the app under /api, from the router's own listing. */
function appRoutes(routes: ListedRoute[], prefix = ""): string[] {
  return routes.flatMap((r) => {
    if (typeof r.path !== "string") return [];
    const p = prefix + (r.path === "/" ? "" : r.path);
    if (r.router) return appRoutes(r.router.listRoutes(), p);
    return (r.methods ?? []).filter((m) => m !== "HEAD").map((m) => `${m} ${p.replace(/:(\w+)/g, "{$1}")}`);
  });
}

/** The JSON pointer `ref` ("#/components/schemas/X") in the document. */
function resolve(ref: string): unknown {
  return ref
    .slice(2)
    .split("/")
    .reduce<unknown>((node, key) => (node as Json | undefined)?.[key], doc);
}

const schemaOf = (s: Json): Json => (typeof s.$ref === "string" ? (resolve(s.$ref) as Json) : s);

/** The least body the schema accepts: its required properties with the smallest values they allow. */
function minimal(schema: Json): Json {
  const props = (schema.properties ?? {}) as Record<string, Json>;
  const value = (p: Json): unknown => {
    const type = Array.isArray(p.type) ? p.type[0] : p.type;
    if (Array.isArray(p.enum)) return p.enum[0];
    if (type === "integer" || type === "number") return 1;
    if (type === "boolean") return true;
    if (type === "object") return {};
    return "x".repeat(Math.max(1, Number(p.minLength ?? 1)));
  };
  return Object.fromEntries(((schema.required ?? []) as string[]).map((k) => [k, value(props[k]!)]));
}

async function call(method: string, pathname: string, headers: Record<string, string> = {}, body?: string) {
  const res = await fetch(`${web.url}${pathname}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined };
}

const filled = (p: string) => p.replace(/\{\w+\}/g, "x");

beforeAll(async () => {
  redis = createRedis({ url: REDIS_URL }, "producer");
  web = await startWeb({ config: cfg, connection: redis, logger, port: 0, host: "127.0.0.1" });
  const r = await call("GET", "/api/openapi.json");
  expect(r.status).toBe(200);
  doc = r.body as unknown as OpenApi;
});

afterAll(async () => {
  await web?.close();
  await deletePrefix(redis, prefix);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("the OpenAPI document", () => {
  it("is structurally OpenAPI 3.1: info, operations with described responses, and every $ref resolves", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(typeof doc.info.title).toBe("string");
    expect(typeof doc.info.version).toBe("string");
    for (const { method, path: p, op } of operations()) {
      expect(["GET", "POST", "PUT", "DELETE"], `${method} ${p}`).toContain(method);
      expect(p.startsWith("/api/"), p).toBe(true);
      expect(Object.keys(op.responses).length, `${method} ${p}`).toBeGreaterThan(0);
      for (const [status, reply] of Object.entries(op.responses)) {
        expect(status).toMatch(/^[1-5]\d\d$/);
        expect(typeof reply.description, `${method} ${p} ${status}`).toBe("string");
      }
      for (const req of op.security ?? doc.security)
        for (const scheme of Object.keys(req)) expect(doc.components.securitySchemes).toHaveProperty(scheme);
    }
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        for (const [k, v] of Object.entries(node)) {
          if (k === "$ref") refs.push(v as string);
          else walk(v);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref, ref).toMatch(/^#\//);
      expect(resolve(ref), ref).toBeTypeOf("object");
    }
  });

  it("declares each path template's parameters, and no path parameter the path lacks", () => {
    for (const { method, path: p, op } of operations()) {
      const inPath = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      const params = (op.parameters ?? []).filter((x) => x.in === "path");
      expect(params.map((x) => x.name).sort(), `${method} ${p}`).toEqual(inPath);
      for (const x of params) expect(x.required, `${method} ${p} ${x.name}`).toBe(true);
      const keys = (op.parameters ?? []).map((x) => `${x.in}:${x.name}`);
      expect(new Set(keys).size, `${method} ${p}`).toBe(keys.length);
    }
  });

  it("lists exactly the routes the express app registers under /api", () => {
    const app = captured.apps.at(-1) as unknown as { router: { listRoutes(): ListedRoute[] } };
    const registered = appRoutes(app.router.listRoutes()).filter((r) => r.split(" ")[1]!.startsWith("/api/"));
    const documented = operations().map((o) => `${o.method} ${o.path}`);
    expect(registered.filter((r) => !OUTSIDE_THE_API.includes(r)).sort()).toEqual([...documented].sort());
    for (const r of OUTSIDE_THE_API) expect(registered).toContain(r);
    // The resources registered outside src/web/api are part of it.
    expect(documented).toEqual(
      expect.arrayContaining([
        "GET /api/exports",
        "POST /api/exports",
        "GET /api/exports/{id}/download",
        "POST /api/noassign",
        "GET /api/noassign/destinations",
        "POST /api/noassign/forward",
        "GET /api/inventory/{project}",
        "POST /api/wsi/uploads",
        "GET /api/wsi/uploads",
        "GET /api/wsi/uploads/{id}",
        "PUT /api/wsi/uploads/{id}",
      ]),
    );
  });

  it("answers every documented operation with the route's own handler, not the catch-all", async () => {
    for (const { method, path: p } of operations()) {
      const r = await call(method, filled(p), { ...asAlice, "Content-Type": "application/json" }, undefined);
      expect(r.body, `${method} ${p}`).not.toEqual({ error: "not found" });
    }
  });

  it("asks for sign-in exactly where the document requires security", async () => {
    for (const { method, path: p, op } of operations()) {
      const open = Array.isArray(op.security) && op.security.length === 0;
      const r = await call(
        method,
        filled(p),
        { "Content-Type": "application/json" },
        method === "GET" ? undefined : "{}",
      );
      if (open) expect(r.status, `${method} ${p}`).not.toBe(401);
      else expect(r, `${method} ${p}`).toMatchObject({ status: 401, body: { error: "sign in required" } });
    }
  });

  it("rejects with 400 the JSON bodies the documented schemas reject", async () => {
    const withJson = operations().filter((o) => o.op.requestBody?.content["application/json"]);
    expect(withJson.length).toBeGreaterThanOrEqual(6);
    for (const { method, path: p, op } of withJson) {
      const schema = schemaOf(op.requestBody!.content["application/json"]!.schema);
      const send = (body: unknown) =>
        call(method, filled(p), { ...asAlice, "Content-Type": "application/json" }, JSON.stringify(body));
      const base = minimal(schema);
      const invalid: Array<[string, unknown]> = [["not an object", [base]]];
      for (const k of (schema.required ?? []) as string[]) {
        const { [k]: _omitted, ...rest } = base;
        invalid.push([`without ${k}`, rest]);
      }
      if (schema.additionalProperties === false) invalid.push(["an unknown key", { ...base, unknownKey: 1 }]);
      for (const [k, prop] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) {
        if (typeof prop.maxLength === "number")
          invalid.push([`${k} too long`, { ...base, [k]: "x".repeat(prop.maxLength + 1) }]);
        if (Array.isArray(prop.enum))
          invalid.push([`${k} not in its enum`, { ...base, [k]: "NOT-AN-ENUM-VALUE" }]);
      }
      for (const [what, body] of invalid) {
        const r = await send(body);
        expect(r.status, `${method} ${p} with ${what}`).toBe(400);
      }
    }
  });

  it("rejects with 400 a request without the query parameters the document requires", async () => {
    const required = operations().filter(
      (o) => o.method === "GET" && (o.op.parameters ?? []).some((x) => x.in === "query" && x.required),
    );
    expect(required.map((o) => o.path)).toContain("/api/transfers/preview");
    for (const { method, path: p } of required) {
      expect((await call(method, filled(p), asAlice)).status, `${method} ${p}`).toBe(400);
    }
  });

  it("rejects a slide chunk without the documented offset, and accepts it with one", async () => {
    const put = doc.paths["/api/wsi/uploads/{id}"]!.put!;
    expect(put.parameters).toContainEqual(
      expect.objectContaining({ name: "offset", in: "query", required: true }),
    );
    const login = await fetch(`${web.url}/api/session`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: "alice", password: PW }),
    });
    const session = {
      Cookie: login.headers.get("set-cookie")!.split(";")[0]!,
      "X-CSRF-Token": ((await login.json()) as { csrfToken: string }).csrfToken,
    };
    const created = await call(
      "POST",
      "/api/wsi/uploads",
      { ...session, "Content-Type": "application/json" },
      JSON.stringify({ project: "PROJ", participant: "PROJ_0001", extension: ".svs", size: 4 }),
    );
    expect(created.status).toBe(201);
    const url = `/api/wsi/uploads/${created.body!.id as string}`;
    const chunk = { ...session, "Content-Type": "application/octet-stream" };
    expect(await call("PUT", url, chunk, "ab")).toEqual({
      status: 400,
      body: { error: "offset: a byte offset is required" },
    });
    expect(await call("PUT", `${url}?offset=0`, chunk, "ab")).toMatchObject({
      status: 200,
      body: { offset: 2, state: "receiving" },
    });
  });
});
