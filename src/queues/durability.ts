import type { Redis } from "ioredis";

/**
 * Whether a Redis keeps what FIONA puts there: the pseudonym and auto-ID mappings, the transfer
 * history, the sent-sets and the audit log live nowhere else. It must persist (AOF, or RDB snapshots)
 * and must not evict keys (maxmemory-policy noeviction, which BullMQ needs as well).
 */
export type DurabilityStatus = "ok" | "not-durable" | "unknown";

export interface DurabilityProblem {
  setting: "appendonly" | "maxmemory-policy";
  /** What the server has. */
  value: string;
  /** What to set instead. */
  set: string;
  why: string;
}

export interface DurabilityReport {
  status: DurabilityStatus;
  /** Where the settings were read: CONFIG GET, else INFO (CONFIG disabled or renamed), else nowhere. */
  source: "config" | "info" | "none";
  problems: DurabilityProblem[];
  /** What could not be told, in words. */
  unknown: string[];
}

/** What was read; undefined where the source does not tell. */
interface Settings {
  appendonly?: string;
  save?: string;
  maxmemoryPolicy?: string;
}

const SNAPSHOTS = 'save "3600 1 300 100 60 10000"';

/** The server answered but did not tell (a proxy filtering CONFIG, an INFO without the fields). */
class NotTold extends Error {}

/** The server answered with an error (unknown or renamed command, ACL NOPERM), or not with the value. */
const refused = (e: unknown): boolean =>
  e instanceof NotTold || (e instanceof Error && e.name === "ReplyError");

async function configGet(redis: Redis, name: string): Promise<string> {
  const reply = (await redis.config("GET", name)) as string[];
  // An unknown parameter yields an empty list, as does a CONFIG GET that a proxy filters.
  // An unknown parameter yields an empty list, as does a CONFIG GET that a proxy filters.
  if (reply[1] === undefined) throw new NotTold(`CONFIG GET ${name}: no value`);
  return reply[1];
}

async function fromConfig(redis: Redis): Promise<Settings> {
  const [appendonly, save, maxmemoryPolicy] = await Promise.all(
    ["appendonly", "save", "maxmemory-policy"].map((n) => configGet(redis, n)),
  );
  return { appendonly, save, maxmemoryPolicy };
}

function infoFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) fields.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return fields;
}

/** INFO tells whether AOF is on and the eviction policy, not whether RDB snapshots are configured. */
async function fromInfo(redis: Redis): Promise<Settings> {
  const [persistence, memory] = await Promise.all([redis.info("persistence"), redis.info("memory")]);
  const aof = infoFields(persistence).get("aof_enabled");
  const maxmemoryPolicy = infoFields(memory).get("maxmemory_policy");
  if (aof === undefined && maxmemoryPolicy === undefined) {
    throw new NotTold("INFO has no aof_enabled or maxmemory_policy");
  }
  return {
    ...(aof !== undefined && { appendonly: aof === "1" ? "yes" : "no" }),
    ...(maxmemoryPolicy !== undefined && { maxmemoryPolicy }),
  };
}

export function evaluate(s: Settings, source: DurabilityReport["source"]): DurabilityReport {
  const problems: DurabilityProblem[] = [];
  const unknown: string[] = [];
  const persists = s.appendonly === "yes" || (s.save !== undefined && s.save.trim() !== "");
  if (!persists) {
    if (s.appendonly === "no" && s.save !== undefined) {
      problems.push({
        setting: "appendonly",
        value: `no (save "${s.save}")`,
        set: `appendonly yes (or RDB snapshots: ${SNAPSHOTS})`,
        why: "Redis keeps FIONA's data in memory only: a restart loses the pseudonym mappings, transfer history and audit log",
      });
    } else if (s.appendonly === "no") {
      unknown.push(
        "persistence: AOF is off and CONFIG is not available, so whether RDB snapshots (save) are configured cannot be read; check the provider's persistence settings",
      );
    } else {
      unknown.push("persistence: neither CONFIG GET nor INFO persistence could be read");
    }
  }
  if (s.maxmemoryPolicy === undefined) {
    unknown.push("maxmemory-policy: neither CONFIG GET nor INFO memory could be read");
  } else if (s.maxmemoryPolicy !== "noeviction") {
    problems.push({
      setting: "maxmemory-policy",
      value: s.maxmemoryPolicy,
      set: "maxmemory-policy noeviction",
      why: "Redis may delete keys when memory is full: mappings, sent-sets and queued jobs would vanish",
    });
  }
  const status = problems.length ? "not-durable" : unknown.length ? "unknown" : "ok";
  return { status, source, problems, unknown };
}

/**
 * Read and judge the server's settings. Rejects only when Redis does not answer (the caller keeps
 * what it knew); refused commands fall back to INFO, then to "unknown".
 */
export async function readDurability(redis: Redis): Promise<DurabilityReport> {
  try {
    return evaluate(await fromConfig(redis), "config");
  } catch (e) {
    if (!refused(e)) throw e;
  }
  try {
    return evaluate(await fromInfo(redis), "info");
  } catch (e) {
    if (!refused(e)) throw e;
  }
  return evaluate({}, "none");
}
