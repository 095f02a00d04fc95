/** `fiona audit [--since <ISO date>] [--limit N] [--json]`: the audit log, oldest first (as the page shows it, reversed). */
import type { Command } from "commander";
import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { AUDIT_FIELDS, AuditLog, type AuditEntry } from "../registry/audit.js";

interface AuditOptions {
  since?: string;
  limit: string;
  json?: boolean;
}

/** The fields after when, who and what, as key=value. */
const FIELDS = AUDIT_FIELDS.filter((f) => !["at", "user", "action", "via"].includes(f));

function line(e: AuditEntry): string {
  const fields = FIELDS.filter((f) => e[f] !== undefined).map((f) => `${f}=${String(e[f])}`);
  return [e.at, e.via ? `${e.user} (${e.via})` : e.user, e.action, ...fields].join("  ");
}

async function printAudit(cfg: FionaConfig, o: AuditOptions): Promise<void> {
  const limit = Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit ${o.limit}: a positive number`);
  const since = o.since === undefined ? undefined : Date.parse(o.since);
  if (since !== undefined && Number.isNaN(since))
    throw new Error(`--since ${o.since}: not an ISO date or time`);
  const redis = await connectProducer(cfg.redis);
  try {
    const audit = new AuditLog(redis, cfg.redis.prefix);
    const entries =
      since === undefined ? (await audit.list({ limit })).reverse() : await audit.since(since, { limit });
    if (o.json) return void console.log(JSON.stringify(entries, null, 2));
    if (!entries.length) return void console.log("no audit entries");
    for (const e of entries) console.log(line(e));
  } finally {
    redis.disconnect();
  }
}

export function registerAuditCommand(program: Command, cfg: () => FionaConfig): void {
  program
    .command("audit")
    .description(
      "the audit log (assignments, sign-ins, retries, Bull Board actions, user changes), oldest first",
    )
    .option(
      "--since <date>",
      "only entries from this ISO date or time on (e.g. 2025-01-31 or 2025-01-31T08:00Z)",
    )
    .option("--limit <n>", "at most this many (without --since: the newest)", "100")
    .option("--json", "machine-readable output")
    .action(async (o: AuditOptions) => printAudit(cfg(), o));
}
