/**
 * Real Redis topologies for the HA tests: a master with replicas watched by three Sentinels, and a
 * three-master Redis Cluster, each made of its own redis-server processes on fixed ports.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { waitFor } from "../support/env.js";

const HOST = "127.0.0.1";

/** A client for admin commands that fails at once instead of queueing while a node is down. */
function admin(port: number): Redis {
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on("error", () => {});
  return r;
}

async function ask<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = admin(port);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

const info = (port: number, section: string) => ask(port, (r) => r.info(section));

class Server {
  readonly exited: Promise<void>;

  constructor(
    readonly port: number,
    readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

async function startServer(port: number, args: string[]): Promise<Server> {
  const proc = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const server = new Server(port, proc);
  await waitFor(
    async () => {
      if (!server.running) throw new Error(`redis-server on ${port} exited: ${stderr}`);
      return (await ask(port, (r) => r.ping())) === "PONG";
    },
    `redis-server on port ${port}`,
    10_000,
  );
  return server;
}

async function assertPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    const answered = await ask(port, (r) => r.ping()).then(
      () => true,
      () => false,
    );
    if (answered) throw new Error(`something already answers on port ${port}; stop it first`);
  }
}

/** Each node keeps its AOF in a directory of its own under `root`. */
function nodeDir(root: string, port: number): string {
  const dir = path.join(root, `node-${port}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const dataNodeArgs = (port: number, root: string) => [
  "--port",
  String(port),
  "--bind",
  HOST,
  "--dir",
  nodeDir(root, port),
  // Durable as a site's Redis must be (FIONA checks it): AOF, fsync'ed every second.
  "--save",
  "",
  "--appendonly",
  "yes",
  "--appendfsync",
  "everysec",
  "--maxmemory-policy",
  "noeviction",
  // A replica syncs at once instead of after the default 5 s of diskless-sync delay.
  "--repl-diskless-sync-delay",
  "0",
];

export interface SentinelSet {
  name: string;
  sentinels: Array<{ host: string; port: number }>;
  /** The data node each port runs (master or replica). */
  nodes: Map<number, Server>;
  /** Replica processes can be stopped (SIGSTOP) and resumed to hold replication back. */
  pause(port: number): void;
  resume(port: number): void;
  /** The master's port as the Sentinels report it. */
  masterPort(): Promise<number>;
  /** A planned failover (SENTINEL FAILOVER): a replica is promoted, the master demoted later. */
  failover(): Promise<void>;
  /** Resolves once every Sentinel names a master other than `oldPort` and it has `replicas` linked. */
  failedOver(oldPort: number, replicas: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * One master, replicas following it and three Sentinels (quorum 2) that fail over after 1 s down and
 * may fail over again 8 s (twice the failover timeout) after the last failover.
 */
export async function startSentinelSet(opts: {
  name: string;
  masterPort: number;
  replicaPorts: number[];
  sentinelPorts: number[];
}): Promise<SentinelSet> {
  const all = [opts.masterPort, ...opts.replicaPorts, ...opts.sentinelPorts];
  await assertPortsFree(all);
  const dir = mkdtempSync(path.join(tmpdir(), "fiona-ha-sentinel-"));
  const nodes = new Map<number, Server>();
  const sentinels: Server[] = [];
  const stop = async () => {
    for (const s of sentinels) await s.stop();
    for (const n of nodes.values()) {
      n.proc.kill("SIGCONT");
      await n.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of [opts.masterPort, ...opts.replicaPorts]) {
      const args = dataNodeArgs(port, dir);
      if (port !== opts.masterPort) args.push("--replicaof", HOST, String(opts.masterPort));
      nodes.set(port, await startServer(port, args));
    }
    for (const port of opts.replicaPorts) {
      await waitFor(
        async () => /master_link_status:up/.test(await info(port, "replication")),
        `replica ${port} in sync`,
      );
    }
    for (const port of opts.sentinelPorts) {
      const conf = path.join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${opts.name} ${HOST} ${opts.masterPort} 2`,
          `sentinel down-after-milliseconds ${opts.name} 1000`,
          `sentinel failover-timeout ${opts.name} 4000`,
          `sentinel parallel-syncs ${opts.name} 1`,
          "",
        ].join("\n"),
      );
      sentinels.push(await startServer(port, [conf, "--sentinel"]));
    }
    // Every Sentinel knows the replicas and the other Sentinels, so a quorum can authorise a failover.
    for (const port of opts.sentinelPorts) {
      await waitFor(
        async () =>
          (await ask(port, (r) => r.call("SENTINEL", "ckquorum", opts.name))) !== undefined &&
          ((await ask(port, (r) => r.call("SENTINEL", "replicas", opts.name))) as unknown[]).length ===
            opts.replicaPorts.length &&
          ((await ask(port, (r) => r.call("SENTINEL", "sentinels", opts.name))) as unknown[]).length ===
            opts.sentinelPorts.length - 1,
        `sentinel ${port} ready`,
        20_000,
        200,
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const masterOf = async (sentinelPort: number) => {
    const addr = (await ask(sentinelPort, (r) =>
      r.call("SENTINEL", "get-master-addr-by-name", opts.name),
    )) as [string, string];
    return Number(addr[1]);
  };
  const signal = (port: number, sig: NodeJS.Signals) => nodes.get(port)?.proc.kill(sig);
  return {
    name: opts.name,
    sentinels: opts.sentinelPorts.map((port) => ({ host: HOST, port })),
    nodes,
    pause: (port) => signal(port, "SIGSTOP"),
    resume: (port) => signal(port, "SIGCONT"),
    masterPort: () => masterOf(opts.sentinelPorts[0]!),
    failover: async () => {
      await ask(opts.sentinelPorts[0]!, (r) => r.call("SENTINEL", "failover", opts.name));
    },
    failedOver: (oldPort, replicas, timeoutMs = 30_000) =>
      waitFor(
        async () => {
          const ports = await Promise.all(opts.sentinelPorts.map(masterOf));
          const port = ports[0]!;
          if (port === oldPort || ports.some((p) => p !== port)) return undefined;
          const repl = await info(port, "replication");
          const linked = [...repl.matchAll(/^slave\d+:.*state=online/gm)].length;
          return /role:master/.test(repl) && linked >= replicas ? port : undefined;
        },
        "failover",
        timeoutMs,
        200,
      ),
    stop,
  };
}

export interface RedisCluster {
  nodes: Array<{ host: string; port: number }>;
  /** Every key on every master (the test cluster holds nothing else). */
  keysByNode(): Promise<Map<number, string[]>>;
  stop(): Promise<void>;
}

/** Three masters, no replicas, slots spread by redis-cli --cluster create. */
export async function startCluster(ports: number[]): Promise<RedisCluster> {
  await assertPortsFree(ports);
  const dir = mkdtempSync(path.join(tmpdir(), "fiona-ha-cluster-"));
  const servers: Server[] = [];
  const stop = async () => {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const args = dataNodeArgs(port, dir).concat([
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        path.join(dir, `nodes-${port}.conf`),
        "--cluster-node-timeout",
        "2000",
      ]);
      servers.push(await startServer(port, args));
    }
    await promisify(execFile)("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `${HOST}:${p}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    for (const port of ports) {
      await waitFor(
        async () => /cluster_state:ok/.test((await ask(port, (r) => r.call("CLUSTER", "INFO"))) as string),
        `cluster node ${port} ok`,
        20_000,
        100,
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    async keysByNode() {
      const out = new Map<number, string[]>();
      for (const port of ports) out.set(port, await ask(port, (r) => r.keys("*")));
      return out;
    },
    stop,
  };
}
