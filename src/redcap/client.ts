import { readFileSync } from "node:fs";
import https from "node:https";
import axios, { type AxiosInstance } from "axios";
import type { RedcapConfig } from "../config/schema.js";
import { RedcapError, bodySnippet } from "./errors.js";
import type { CallLimiter } from "./rate.js";

/** A flat export row: every value a string, except redcap_repeat_instance (number on repeat rows, "" otherwise). */
export type RedcapRow = Record<string, string | number>;
/** An import row: send every value as a string ("0"/"1" for booleans). */
export type RedcapImportRow = Record<string, string | number>;

/** A cell of an exported row (or any loose value) as trimmed text, "" when absent. */
export const cellText = (v: unknown) => (v === undefined || v === null ? "" : String(v).trim());

type Param = string | number | boolean | readonly string[] | undefined;

export interface ExportOptions {
  /** Always include the record-ID field here, or REDCap leaves the record-ID and repeat columns out. */
  fields?: readonly string[];
  forms?: readonly string[];
  records?: readonly string[];
  events?: readonly string[];
  rawOrLabel?: "raw" | "label";
  filterLogic?: string;
  /** "YYYY-MM-DD HH:MM:SS", REDCap server time. */
  dateRangeBegin?: string;
}

export interface ImportOptions {
  /** "overwrite": empty values erase stored ones; "normal" (default): empty values are ignored. */
  overwriteBehavior?: "normal" | "overwrite";
}

/** Batch sizes of the original FIONA: record lookups, imports, deletes. */
const BATCH = { export: 50, import: 100, delete: 200 } as const;

export interface RedcapClientOptions {
  /** The API URL, ending in /api/. */
  url: string;
  token: string;
  /** Configuration name of the REDCap project (for errors and logs; never the token). */
  redcapProject: string;
  timeoutMs?: number;
  /** PEM text of an extra CA. */
  ca?: string | Buffer;
  /** Retries of one call on 5xx, timeouts and network errors. */
  retries?: number;
  /** First retry delay; doubles each retry. */
  retryDelayMs?: number;
  /** Shared call limit (RedisCallLimiter in production). */
  limiter?: CallLimiter;
}

/**
 * Client for REDCap's API: form-encoded POSTs to <url> with format=json and returnFormat=json, arrays as
 * name[0]=…, TLS verification always on. 403/400 fail at once, 429 (IP ban) fails at once with kind
 * "banned", 5xx/timeouts/network errors are retried with exponential backoff, and a 200 whose body is not
 * the expected JSON is an error.
 */
export class RedcapClient {
  private readonly http: AxiosInstance;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  readonly redcapProject: string;

  constructor(private readonly opts: RedcapClientOptions) {
    if (!/\/api\/$/.test(opts.url))
      throw new RedcapError("the API URL must end in /api/", "config", opts.redcapProject);
    if (!opts.token) throw new RedcapError("no API token configured", "config", opts.redcapProject);
    this.redcapProject = opts.redcapProject;
    this.retries = opts.retries ?? 2;
    this.retryDelayMs = opts.retryDelayMs ?? 1000;
    this.http = axios.create({
      timeout: opts.timeoutMs ?? 30_000,
      // REDCap redirects turn POSTs into GETs (501); treat any redirect as an error instead.
      maxRedirects: 0,
      responseType: "text",
      transformResponse: [(d: unknown) => d],
      validateStatus: () => true,
      httpsAgent: new https.Agent({
        rejectUnauthorized: true,
        keepAlive: true,
        ...(opts.ca ? { ca: opts.ca } : {}),
      }),
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    });
  }

  /** One API call; `parse` checks and converts the JSON body. */
  async call<T>(params: Record<string, Param>, parse: (body: unknown, raw: string) => T): Promise<T> {
    const body = encodeForm({ token: this.opts.token, format: "json", returnFormat: "json", ...params });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(body, parse);
      } catch (e) {
        if (!(e instanceof RedcapError) || !e.retryable || attempt >= this.retries) throw e;
        const delay = this.retryDelayMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async once<T>(body: string, parse: (body: unknown, raw: string) => T): Promise<T> {
    await this.opts.limiter?.acquire();
    const name = this.redcapProject;
    let res;
    try {
      res = await this.http.post<string>(this.opts.url, body);
    } catch (e) {
      // Never pass the axios error on: its config holds the request body and thus the token.
      const err = e as { code?: string; message?: string };
      const timeout =
        err.code === "ECONNABORTED" || err.code === "ETIMEDOUT" || /timeout/i.test(err.message ?? "");
      throw new RedcapError(
        timeout ? "no answer in time" : `network error ${err.code ?? ""}`.trim(),
        timeout ? "timeout" : "network",
        name,
      );
    }
    const raw = typeof res.data === "string" ? res.data : String(res.data ?? "");
    const status = res.status;
    if (status === 429)
      throw new RedcapError(`429 ${bodySnippet(raw) || "too many requests"}`, "banned", name, status);
    if (status >= 300) {
      const msg = errorMessage(raw);
      const kind = status >= 500 ? "server" : status === 403 || status === 401 ? "auth" : "request";
      throw new RedcapError(`${status} ${msg || "(empty body)"}`, kind, name, status);
    }
    let json: unknown;
    try {
      json = raw.trim() === "" ? undefined : JSON.parse(raw);
    } catch {
      throw new RedcapError(
        `200 with a body that is not JSON: ${bodySnippet(raw, 120)}`,
        "response",
        name,
        status,
      );
    }
    if (
      json &&
      typeof json === "object" &&
      !Array.isArray(json) &&
      typeof (json as { error?: unknown }).error === "string"
    )
      throw new RedcapError(
        `200 with an error: ${(json as { error: string }).error}`,
        "request",
        name,
        status,
      );
    try {
      return parse(json, raw);
    } catch (e) {
      throw new RedcapError(`unexpected response: ${(e as Error).message}`, "response", name, status);
    }
  }

  /** content=record, type=flat export. */
  exportRecords(o: ExportOptions = {}): Promise<RedcapRow[]> {
    return this.call(
      {
        content: "record",
        action: "export",
        type: "flat",
        rawOrLabel: o.rawOrLabel ?? "raw",
        fields: o.fields,
        forms: o.forms,
        records: o.records,
        events: o.events,
        filterLogic: o.filterLogic,
        dateRangeBegin: o.dateRangeBegin,
      },
      asRows,
    );
  }

  /** Export in batches of BATCH.export records (as the original's Incoming lookups). */
  async exportRecordsBatched(
    records: readonly string[],
    o: Omit<ExportOptions, "records"> = {},
  ): Promise<RedcapRow[]> {
    const out: RedcapRow[] = [];
    for (let i = 0; i < records.length; i += BATCH.export)
      out.push(...(await this.exportRecords({ ...o, records: records.slice(i, i + BATCH.export) })));
    return out;
  }

  /**
   * Import rows (all-or-nothing per call); returns REDCap's count of distinct records. Repeating
   * instruments: set redcap_repeat_instrument and redcap_repeat_instance (a number or "new").
   */
  async importRecords(rows: readonly RedcapImportRow[], o: ImportOptions = {}): Promise<number> {
    if (rows.length === 0) return 0;
    return this.call(
      {
        content: "record",
        action: "import",
        type: "flat",
        overwriteBehavior: o.overwriteBehavior ?? "normal",
        forceAutoNumber: "false",
        returnContent: "count",
        data: JSON.stringify(rows.map(stringValues)),
      },
      asCount,
    );
  }

  /** Import in batches of at most BATCH.import records, keeping each record's rows in one call. */
  async importRecordsBatched(
    rows: readonly RedcapImportRow[],
    recordIdField: string,
    o: ImportOptions = {},
  ): Promise<number> {
    const byRecord = new Map<string, RedcapImportRow[]>();
    for (const r of rows) {
      const id = String(r[recordIdField] ?? "");
      byRecord.set(id, [...(byRecord.get(id) ?? []), r]);
    }
    const groups = [...byRecord.values()];
    let n = 0;
    for (let i = 0; i < groups.length; i += BATCH.import)
      n += await this.importRecords(groups.slice(i, i + BATCH.import).flat(), o);
    return n;
  }

  /** Delete whole records, BATCH.delete per call; returns how many were deleted. */
  async deleteRecords(records: readonly string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < records.length; i += BATCH.delete)
      n += await this.call(
        { content: "record", action: "delete", records: records.slice(i, i + BATCH.delete) },
        asNumber,
      );
    return n;
  }

  metadata(o: { fields?: readonly string[]; forms?: readonly string[] } = {}): Promise<RedcapRow[]> {
    return this.call({ content: "metadata", fields: o.fields, forms: o.forms }, asRows);
  }

  events(): Promise<RedcapRow[]> {
    return this.call({ content: "event" }, asRows);
  }

  /** The next numeric record name (creates nothing). */
  generateNextRecordName(): Promise<string> {
    return this.call({ content: "generateNextRecordName" }, (j, raw) => {
      if (typeof j === "number" || typeof j === "string") return String(j);
      throw new Error(`not a record name: ${bodySnippet(raw, 60)}`);
    });
  }
}

/** PHP-style form encoding: arrays as name[0]=a&name[1]=b; undefined values left out. */
export function encodeForm(params: Record<string, Param>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) (v as readonly string[]).forEach((x, i) => p.append(`${k}[${i}]`, x));
    else p.append(k, String(v));
  }
  return p.toString();
}

function errorMessage(raw: string): string {
  try {
    const j = JSON.parse(raw) as { error?: unknown };
    if (j && typeof j.error === "string") return bodySnippet(j.error, 1000);
  } catch {
    /* not JSON: plain text or HTML */
  }
  return bodySnippet(raw);
}

function asRows(j: unknown): RedcapRow[] {
  if (!Array.isArray(j)) throw new Error("expected a JSON array");
  for (const r of j)
    if (!r || typeof r !== "object" || Array.isArray(r)) throw new Error("expected an array of objects");
  return j as RedcapRow[];
}

function asCount(j: unknown): number {
  const c = (j as { count?: unknown } | undefined)?.count;
  const n = typeof c === "number" ? c : typeof c === "string" ? Number(c) : NaN;
  if (!Number.isInteger(n)) throw new Error('expected {"count": N}');
  return n;
}

function asNumber(j: unknown): number {
  const n = typeof j === "number" ? j : typeof j === "string" ? Number(j) : NaN;
  if (!Number.isInteger(n)) throw new Error("expected a number");
  return n;
}

const stringValues = (r: RedcapImportRow): Record<string, string> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));

/** Configuration names of the REDCap projects FIONA uses. */
export type RedcapProjectName =
  "incoming" | "routing" | "coupling" | "dataTransferProjects" | "autoId" | `project:${string}`;

/** Environment variable holding a project's token: FIONA_REDCAP_TOKEN_INCOMING, …_PROJECT_<NAME>. */
export function tokenEnvName(name: string): string {
  const key = name.startsWith("project:")
    ? `PROJECT_${name.slice(8)}`
    : name.replace(/([a-z0-9])([A-Z])/g, "$1_$2");
  return `FIONA_REDCAP_TOKEN_${key.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}`;
}

/** The token of a REDCap project, looked up at run time (environment first, then configuration). */
export function redcapToken(
  cfg: RedcapConfig,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const fromEnv = env[tokenEnvName(name)];
  if (fromEnv) return fromEnv.trim();
  if (name.startsWith("project:")) return cfg.projects.perProject[name.slice(8)]?.token;
  const p = cfg.projects[name as Exclude<keyof RedcapConfig["projects"], "perProject">];
  return p?.token;
}

/** A client for one REDCap project of the configuration; throws a "config" RedcapError without a token. */
export function clientFor(cfg: RedcapConfig, name: string, limiter?: CallLimiter): RedcapClient {
  const token = redcapToken(cfg, name);
  if (!token)
    throw new RedcapError(`no API token (redcap.projects or ${tokenEnvName(name)})`, "config", name);
  return new RedcapClient({
    url: cfg.url,
    token,
    redcapProject: name,
    timeoutMs: cfg.timeoutMs,
    retries: cfg.retries,
    ...(cfg.ca ? { ca: readFileSync(cfg.ca) } : {}),
    ...(limiter ? { limiter } : {}),
  });
}
