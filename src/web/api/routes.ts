/**
 * The API's route registry. A route is declared once, with its method, path, summary, request schemas
 * and documented answers; the same declaration registers the express handler, whose `input` parses
 * the request with exactly those schemas, and feeds the OpenAPI document (./openapi.ts).
 */
import express, { type Request, type RequestHandler, type Response, type Router } from "express";
import type { ZodIssue } from "zod";
import { HttpError } from "./http-error.js";
import { z } from "./zod.js";

export type Method = "get" | "post" | "put" | "delete";

type Schema = z.ZodTypeAny | undefined;
type Out<S extends Schema> = S extends z.ZodTypeAny ? z.output<S> : undefined;

/** One documented answer. */
export interface Reply {
  description: string;
  schema?: z.ZodTypeAny;
  /** Media type of the body when it is not JSON. */
  type?: string;
}

export interface RouteSpec<
  P extends z.AnyZodObject | undefined = undefined,
  Q extends Schema = undefined,
  B extends Schema = undefined,
> {
  method: Method;
  /** Express path below the registry's prefix; `:name` appears as `{name}` in the document. */
  path: string;
  summary: string;
  description?: string;
  /** Served before sign-in is checked: documented without security and without 401/403. */
  public?: boolean;
  params?: P;
  /** An object schema, possibly refined or transformed. */
  query?: Q;
  body?: B;
  /** Media type of the body when it is not JSON. */
  bodyType?: string;
  /** Media type of a body the handler streams instead of parsing (documented as binary). */
  streamed?: string;
  /** The 400 message for a query or body the schemas reject. */
  invalid?: (issue: ZodIssue | undefined) => string;
  responses: Record<number, Reply>;
  /** Middleware that runs before the handler (body parsers the API does not apply to every route). */
  before?: RequestHandler[];
}

/** A registered route, with its path as the document shows it (`/api/transfers/{requestId}`). */
export type DeclaredRoute = RouteSpec<z.AnyZodObject | undefined, Schema, Schema> & { openApiPath: string };

/** The request as the route's schemas parse it; each throws a 400 HttpError when they reject it. */
export interface Input<P extends Schema, Q extends Schema, B extends Schema> {
  params(): Out<P>;
  query(): Out<Q>;
  body(): Out<B>;
}

export type Handler<P extends Schema, Q extends Schema, B extends Schema> = (
  req: Request,
  res: Response,
  input: Input<P, Q, B>,
) => unknown;

const defaultInvalid = (i: ZodIssue | undefined) =>
  `${i?.path.join(".") || "request"}: ${i?.message ?? "invalid"}`;

function parser<S extends Schema>(
  schema: S | undefined,
  value: () => unknown,
  invalid: (i: ZodIssue | undefined) => string,
) {
  return (): Out<S> => {
    if (!schema) return undefined as Out<S>;
    const r = schema.safeParse(value());
    if (!r.success) throw new HttpError(400, invalid(r.error.issues[0]));
    return r.data as Out<S>;
  };
}

function checkParams(spec: DeclaredRoute) {
  const inPath = [...spec.path.matchAll(/:(\w+)/g)].map((m) => m[1]).sort();
  const declared = Object.keys(spec.params?.shape ?? {}).sort();
  if (inPath.join() !== declared.join())
    throw new Error(
      `${spec.method} ${spec.openApiPath}: path parameters [${inPath}] but schema [${declared}]`,
    );
}

export class ApiRoutes {
  private constructor(
    readonly router: Router,
    private readonly prefix: string,
    private readonly declared: DeclaredRoute[],
  ) {}

  /** A registry for `router`, which is mounted at `prefix`. */
  static on(router: Router, prefix: string): ApiRoutes {
    return new ApiRoutes(router, prefix, []);
  }

  /** Every route declared so far, here and in scopes, in registration order. */
  get all(): readonly DeclaredRoute[] {
    return this.declared;
  }

  route<P extends z.AnyZodObject | undefined, Q extends Schema, B extends Schema>(
    spec: RouteSpec<P, Q, B>,
    handler: Handler<P, Q, B>,
  ): void {
    const declared: DeclaredRoute = {
      ...spec,
      openApiPath: this.prefix + spec.path.replace(/:(\w+)/g, "{$1}"),
    };
    checkParams(declared);
    this.declared.push(declared);
    const invalid = spec.invalid ?? defaultInvalid;
    this.router[spec.method](spec.path, ...(spec.before ?? []), (req: Request, res: Response) =>
      handler(req, res, {
        params: parser<P>(spec.params, () => req.params, invalid),
        query: parser<Q>(spec.query, () => req.query, invalid),
        body: parser<B>(spec.body, () => req.body, invalid),
      }),
    );
  }

  /** Routes below `path` on a router of their own (with its own error handling), mounted here now. */
  scope(path: string): ApiRoutes {
    const router = express.Router();
    this.router.use(path, router);
    return new ApiRoutes(router, this.prefix + path, this.declared);
  }
}
