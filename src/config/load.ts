import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { ZodError } from "zod";
import { configSchema, type FionaConfig } from "./schema.js";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Json = Record<string, unknown>;

/** Original FIONA config.json keys (and our own renamed ones) that map onto ours. */
function mapLegacyKeys(raw: Json): Json {
  const out: Json = { ...raw };
  const legacy: Array<[string, (v: unknown) => void]> = [
    ["DICOMPORT", (v) => (out.dicomPort ??= Number(v))],
    ["DICOMAETITLE", (v) => (out.aeTitle ??= v)],
    ["DATADIR", (v) => (out.dataDir ??= v)],
    // Earlier releases named the incoming list "quarantine"; the word now means a stage's failures.
    ["quarantine", (v) => (out.incoming ??= v)],
  ];
  for (const [key, apply] of legacy) {
    if (key in out) {
      apply(out[key]);
      delete out[key];
    }
  }
  const schedules = out.schedules as Json | undefined;
  if (schedules && "quarantineRetention" in schedules) {
    const { quarantineRetention, ...rest } = schedules;
    out.schedules = { incomingRetention: quarantineRetention, ...rest };
  }
  return out;
}

function setPath(obj: Json, keys: string[], value: unknown): void {
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof cur[k] !== "object" || cur[k] === null) cur[k] = {};
    cur = cur[k] as Json;
  }
  cur[keys[keys.length - 1]!] = value;
}

const numberEnv = (v: string) => (v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : v);

/** Environment variables that override the file: [variable, config path, parser]. */
const ENV_OVERRIDES: Array<[string, string[], (v: string) => unknown]> = [
  ["REDIS_URL", ["redis", "url"], String],
  ["FIONA_REDIS_PREFIX", ["redis", "prefix"], String],
  ["FIONA_DATA_DIR", ["dataDir"], String],
  ["FIONA_DICOM_PORT", ["dicomPort"], numberEnv],
  ["FIONA_AE_TITLE", ["aeTitle"], String],
  ["FIONA_HTTP_PORT", ["httpPort"], numberEnv],
  ["FIONA_HTTP_HOST", ["httpHost"], String],
  ["FIONA_DICOM_HOST", ["dicomHost"], String],
  ["FIONA_QUIET_SECONDS", ["arrival", "quietSeconds"], numberEnv],
  ["FIONA_RULES_FILE", ["classify", "rulesFile"], String],
  ["FIONA_LOG_LEVEL", ["log", "level"], String],
  ["FIONA_SECRET", ["secret"], String],
];

function describeIssues(err: ZodError, source: string): string {
  const lines = err.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
  return `invalid configuration in ${source}:\n${lines.join("\n")}`;
}

export interface LoadOptions {
  /** Explicit config path (--config); else FIONA_CONFIG; else ./fiona.config.json if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

function resolveConfigPath(opts: LoadOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  if (opts.file) return path.resolve(opts.file);
  if (env.FIONA_CONFIG) return path.resolve(env.FIONA_CONFIG);
  const local = path.resolve("fiona.config.json");
  return existsSync(local) ? local : undefined;
}

export function loadConfig(opts: LoadOptions = {}): FionaConfig {
  const env = opts.env ?? process.env;
  const file = resolveConfigPath(opts);
  let raw: Json = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new ConfigError(`cannot read configuration file ${file}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Json;
    } catch (e) {
      throw new ConfigError(`configuration file ${file} is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ConfigError(`configuration file ${file} must hold a JSON object`);
    }
  }
  raw = mapLegacyKeys(raw);
  for (const [name, keys, parse] of ENV_OVERRIDES) {
    const v = env[name];
    if (v !== undefined && v !== "") setPath(raw, keys, parse(v));
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(describeIssues(parsed.error, file ?? "defaults and environment"));
  const cfg = parsed.data;
  return { ...cfg, dataDir: path.resolve(cfg.dataDir) };
}

const SECRET_KEYS = /pass|secret|token|key/i;

/** A copy safe to print: secret values and credentials inside URLs are replaced. */
export function redactConfig(value: unknown, key = ""): unknown {
  if (typeof value === "string") {
    if (SECRET_KEYS.test(key)) return "[redacted]";
    return value.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1[redacted]@");
  }
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k)]));
  }
  return value;
}
