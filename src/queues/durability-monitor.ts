import type { Cluster, Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { ReadinessCheck } from "../web/server.js";
import { createRedis } from "./connection.js";
import { readDurability, type DurabilityReport } from "./durability.js";

export interface DurabilityMonitor {
  /** The `redisDurability` check of /readyz; `blocksReadiness` when not durable and redis.requireDurable. */
  readiness(): { check: ReadinessCheck; blocksReadiness: boolean };
  close(): Promise<void>;
}

/** The first check must not hold a role's start up for long (a Sentinel or Cluster still settling). */
const FIRST_CHECK_MS = 5000;

const RANK = { ok: 0, unknown: 1, "not-durable": 2 } as const;

/** One report for every master of a Cluster: the worst status, each problem and doubt once. */
function merge(reports: DurabilityReport[]): DurabilityReport {
  const worst = reports.reduce((a, b) => (RANK[b.status] > RANK[a.status] ? b : a));
  const problems = new Map(reports.flatMap((r) => r.problems).map((p) => [`${p.setting}=${p.value}`, p]));
  return {
    status: worst.status,
    source: worst.source,
    problems: [...problems.values()],
    unknown: [...new Set(reports.flatMap((r) => r.unknown))],
  };
}

/**
 * Check at start, then every redis.durabilityCheckSeconds, that Redis persists and does not evict;
 * log each change (`redis-not-durable` naming the setting, `redis-durable`, `redis-durability-unknown`)
 * and answer the readiness check from the last result.
 */
export async function startDurabilityMonitor(cfg: FionaConfig, log: Logger): Promise<DurabilityMonitor> {
  const { requireDurable, durabilityCheckSeconds } = cfg.redis;
  const redis = createRedis(cfg.redis, "producer", { lazyConnect: true });
  const nodes = (): Redis[] => (cfg.redis.cluster ? (redis as unknown as Cluster).nodes("master") : [redis]);
  let report: DurabilityReport | undefined;
  let logged = "";

  const logChange = (r: DurabilityReport) => {
    const signature = JSON.stringify([r.status, r.problems, r.unknown]);
    if (signature === logged) return;
    logged = signature;
    if (r.status === "ok") {
      log.info(
        { event: "redis-durable", source: r.source },
        "Redis persists its data and does not evict keys",
      );
    }
    for (const p of r.problems) {
      log[requireDurable ? "error" : "warn"](
        { event: "redis-not-durable", setting: p.setting, value: p.value, set: p.set, requireDurable },
        `Redis is not durable: ${p.why}; set ${p.set}`,
      );
    }
    if (r.unknown.length) {
      log.warn(
        { event: "redis-durability-unknown", source: r.source, unknown: r.unknown },
        "cannot tell whether Redis keeps its data",
      );
    }
  };

  let running: Promise<void> | undefined;
  const refresh = () =>
    (running ??= (async () => {
      try {
        if (redis.status === "wait") await redis.connect();
        report = merge(await Promise.all(nodes().map((n) => readDurability(n))));
        logChange(report);
      } catch {
        // Redis not answering: keep what was known; the redis check of /readyz reports the outage.
      } finally {
        running = undefined;
      }
    })());

  await Promise.race([refresh(), new Promise((r) => setTimeout(r, FIRST_CHECK_MS).unref())]);
  const timer = setInterval(() => void refresh(), durabilityCheckSeconds * 1000).unref();

  return {
    readiness() {
      if (!report) {
        return {
          check: { ok: false, detail: { status: "unknown", reason: "not read yet: Redis did not answer" } },
          blocksReadiness: false,
        };
      }
      if (report.status === "ok") return { check: { ok: true }, blocksReadiness: false };
      if (report.status === "unknown") {
        return {
          check: { ok: false, detail: { status: "unknown", reasons: report.unknown } },
          blocksReadiness: false,
        };
      }
      const problems = report.problems.map(({ setting, value, set }) => ({ setting, value, set }));
      return {
        check: { ok: false, detail: { status: "degraded", problems, requireDurable } },
        blocksReadiness: requireDurable,
      };
    },
    async close() {
      clearInterval(timer);
      await running;
      redis.disconnect();
    },
  };
}
