import { Cluster, Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { redactConfig } from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";
import { connectProducer, createRedis } from "../../src/queues/connection.js";

const sentinels = [
  { host: "10.0.0.1", port: 26379 },
  { host: "10.0.0.2", port: 26379 },
];
const nodes = [{ host: "10.0.1.1", port: 7000 }];

/** The messages of the issues, each prefixed with its path. */
function issues(redis: unknown): string[] {
  const r = configSchema.safeParse({ redis });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("redis configuration", () => {
  it("accepts Sentinels with a master name, and a Cluster with a hash-tagged prefix", () => {
    expect(issues({ sentinels, sentinelName: "fiona", waitReplicas: 2 })).toEqual([]);
    expect(issues({ cluster: nodes, prefix: "{fiona}" })).toEqual([]);
    expect(issues({ cluster: nodes, prefix: "site-{fiona}" })).toEqual([]);
  });

  it("names what is missing or contradictory", () => {
    expect(issues({ sentinels })).toEqual(["redis.sentinelName: redis.sentinels needs redis.sentinelName"]);
    expect(issues({ sentinelName: "fiona" })).toEqual([
      "redis.sentinels: redis.sentinelName needs redis.sentinels",
    ]);
    expect(issues({ sentinels, sentinelName: "fiona", cluster: nodes, prefix: "{f}" })).toEqual([
      "redis.cluster: use redis.sentinels or redis.cluster, not both",
    ]);
    expect(issues({ url: "redis://:a@h:6379", password: "b" })).toEqual([
      "redis.password: give the password in redis.url or in redis.password, not both",
    ]);
    expect(issues({ cluster: nodes, prefix: "{fiona}", waitReplicas: 1 })).toEqual([
      "redis.waitReplicas: not supported with redis.cluster",
    ]);
  });

  it("requires a Cluster prefix whose hash tag Redis hashes alone", () => {
    for (const prefix of ["fiona", "{}fiona", "fi{ona", "fiona}{x"]) {
      expect(issues({ cluster: nodes, prefix }), prefix).toEqual([
        'redis.prefix: with redis.cluster the prefix needs a hash tag such as "{fiona}", so that every key is in one hash slot',
      ]);
    }
  });

  it("redacts the passwords when printed", () => {
    const cfg = configSchema.parse({
      redis: { url: "redis://u:urlsecret@h:6379", sentinels, sentinelName: "m", sentinelPassword: "s3" },
    });
    const printed = JSON.stringify(redactConfig(cfg));
    expect(printed).not.toContain("urlsecret");
    expect(printed).not.toContain('"s3"');
    const withKey = configSchema.parse({ redis: { cluster: nodes, prefix: "{f}", password: "keysecret" } });
    expect(JSON.stringify(redactConfig(withKey))).not.toContain("keysecret");
  });
});

describe("createRedis", () => {
  it("builds a Sentinel client that asks for the named master, with the url's credentials", () => {
    const client = createRedis(
      { url: "redis://app:pw@ignored:1", sentinels, sentinelName: "fiona", sentinelPassword: "sp" },
      "worker",
      { lazyConnect: true },
    );
    expect(client).toBeInstanceOf(Redis);
    expect(client.options).toMatchObject({
      sentinels,
      name: "fiona",
      username: "app",
      password: "pw",
      sentinelPassword: "sp",
      maxRetriesPerRequest: null,
    });
    client.disconnect();
  });

  it("builds a Cluster client: BullMQ's options per node, fail-fast queueing for producers", () => {
    const worker = createRedis({ url: "redis://127.0.0.1:6379", cluster: nodes, password: "pw" }, "worker", {
      lazyConnect: true,
    }) as unknown as Cluster;
    expect(worker).toBeInstanceOf(Cluster);
    expect(worker.options.redisOptions).toMatchObject({ maxRetriesPerRequest: null, password: "pw" });
    const producer = createRedis({ url: "redis://127.0.0.1:6379", cluster: nodes }, "producer", {
      lazyConnect: true,
    }) as unknown as Cluster;
    expect(producer.options).toMatchObject({ enableOfflineQueue: false, lazyConnect: true });
    expect(producer.options.redisOptions).toMatchObject({ maxRetriesPerRequest: 1 });
    worker.disconnect();
    producer.disconnect();
  });

  it("gives up connecting a CLI's producer when no Sentinel answers, naming where it looked", async () => {
    const started = Date.now();
    // 17409: a port of the HA tests' range that nothing listens on.
    const target = {
      url: "redis://127.0.0.1:6379",
      sentinels: [{ host: "127.0.0.1", port: 17409 }],
      sentinelName: "m",
    };
    await expect(connectProducer(target, 500)).rejects.toThrow(
      'cannot connect to Redis at master "m" of Sentinels 127.0.0.1:17409: no answer within 0.5 s',
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
