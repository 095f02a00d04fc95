import os from "node:os";
import type { FionaConfig } from "../config/schema.js";
import { connectProducer } from "../queues/connection.js";
import { AuditLog, type AuditInput } from "../registry/audit.js";

/**
 * Record a command's action in the audit log as the operating-system user running it. A change that
 * is already made is not undone when Redis is unreachable: the command says it was not audited.
 */
export async function auditCliAction(
  cfg: FionaConfig,
  entry: Omit<AuditInput, "user" | "via">,
): Promise<void> {
  let redis;
  try {
    redis = await connectProducer(cfg.redis);
    // No pino copy: it would go to stdout, between the command's own output.
    const audit = new AuditLog(redis, cfg.redis.prefix);
    await audit.record({ user: os.userInfo().username, via: "cli", ...entry });
  } catch (e) {
    console.error(`fiona: not written to the audit log: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    redis?.disconnect();
  }
}
