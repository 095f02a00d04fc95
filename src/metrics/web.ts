import type { Request, Response } from "express";
import type { Redis } from "ioredis";
import type { FionaConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { collectMetrics } from "./collect.js";
import { renderMetrics } from "./render.js";

/** GET /metrics: the Prometheus text format, read from Redis at each scrape. */
export const metricsHandler =
  (cfg: FionaConfig, redis: Redis, logger: Logger) => async (_req: Request, res: Response) => {
    if (redis.status !== "ready") {
      res.status(503).type("text/plain").send("redis not connected\n");
      return;
    }
    try {
      const text = renderMetrics(await collectMetrics(redis, cfg));
      res.type("text/plain; version=0.0.4; charset=utf-8").send(text);
    } catch (err) {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, "web: /metrics failed");
      res.status(503).type("text/plain").send("metrics unavailable\n");
    }
  };
