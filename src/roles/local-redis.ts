import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, accessSync, constants } from "node:fs";
import path from "node:path";
import type { Logger } from "../log.js";
import { redisAnswers, type RedisTarget } from "../queues/connection.js";

export interface RedisHandle {
  url: string;
  /** True when this process started the server and will stop it. */
  owned: boolean;
  stop(): Promise<void>;
}

class RedisUnavailableError extends Error {}

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const HOW_TO_GET_REDIS =
  "Install it (Debian: apt-get install redis-server), run one (docker compose up -d redis), or set REDIS_URL.";

/**
 * Use the Redis at target.url; if none answers and the url is local, start redis-server as a child
 * process with the production settings BullMQ needs (AOF on, noeviction), data under dataDir/redis.
 */
export async function ensureRedis(
  target: RedisTarget,
  dataDir: string,
  log: Logger,
  allowStart = true,
): Promise<RedisHandle> {
  const { url } = target;
  // Sentinels and a Cluster are the site's to run; their clients find the nodes (and wait) themselves.
  if (target.sentinels || target.cluster || (await redisAnswers(url))) {
    return { url, owned: false, stop: async () => {} };
  }
  const u = new URL(url);
  const local = ["127.0.0.1", "localhost", "::1", "[::1]"].includes(u.hostname);
  const bin = onPath("redis-server");
  if (!allowStart || !local || !bin) {
    throw new RedisUnavailableError(`no Redis answers at ${u.host}. ${HOW_TO_GET_REDIS}`);
  }
  const dir = path.join(dataDir, "redis");
  mkdirSync(dir, { recursive: true });
  const port = u.port || "6379";
  const child: ChildProcess = spawn(
    bin,
    [
      "--port",
      port,
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "everysec",
    ].concat(["--maxmemory-policy", "noeviction", "--save", "", "--daemonize", "no"]),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let exited = false;
  child.on("exit", () => (exited = true));
  for (let i = 0; i < 100 && !exited; i++) {
    if (await redisAnswers(url, 200)) {
      log.info({ port, dir }, "started a local redis-server");
      return {
        url,
        owned: true,
        stop: () =>
          new Promise<void>((resolve) => {
            if (exited) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
          }),
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new RedisUnavailableError(`redis-server did not start on port ${port}. ${HOW_TO_GET_REDIS}`);
}
