import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { createServer as createNetServer } from "node:net";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue, QueueEvents, Worker, type Processor } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emitAutomation } from "../../src/automation/emit.js";
import type { FionaConfig, FionaConfigInput } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { automationProcessor } from "../../src/processors/automation.js";
import type { TypedQueue } from "../../src/queues/index.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";

interface Hit {
  status: number;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
}

/** A webhook receiver: answers each POST to /<path> with the next status of its script, then 200. */
async function webhookServer(port: number, scripts: Record<string, number[]>) {
  const hits: Record<string, Hit[]> = {};
  const server = createHttpServer((req, res) => {
    let raw = "";
    req.on("data", (d: Buffer) => (raw += d.toString()));
    req.on("end", () => {
      const key = (req.url ?? "/").slice(1);
      const status = scripts[key]?.shift() ?? 200;
      (hits[key] ??= []).push({
        status,
        headers: req.headers,
        body: JSON.parse(raw) as Record<string, unknown>,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { hits, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A minimal SMTP sink: accepts every message and keeps its DATA. */
async function smtpSink(port: number) {
  const messages: string[] = [];
  const server = createNetServer((sock) => {
    let buf = "";
    let inData = false;
    sock.write("220 sink ESMTP\r\n");
    sock.on("data", (d: Buffer) => {
      buf += d.toString();
      for (;;) {
        if (inData) {
          const end = buf.indexOf("\r\n.\r\n");
          if (end < 0) return;
          messages.push(buf.slice(0, end));
          buf = buf.slice(end + 5);
          inData = false;
          sock.write("250 queued\r\n");
          continue;
        }
        const nl = buf.indexOf("\r\n");
        if (nl < 0) return;
        const line = buf.slice(0, nl).toUpperCase();
        buf = buf.slice(nl + 2);
        if (line.startsWith("EHLO") || line.startsWith("HELO")) sock.write("250 sink\r\n");
        else if (line.startsWith("DATA")) {
          inData = true;
          sock.write("354 go\r\n");
        } else if (line.startsWith("QUIT")) sock.end("221 bye\r\n");
        else sock.write("250 ok\r\n");
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { messages, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("automation delivery", () => {
  let cfg: FionaConfig;
  let redis: Redis;
  let queue: TypedQueue<"automation">;
  let events: QueueEvents;
  let worker: Worker;
  let hooks: Awaited<ReturnType<typeof webhookServer>>;
  let smtp: Awaited<ReturnType<typeof smtpSink>>;
  const outDir = mkdtempSync(path.join(tmpdir(), "fiona-automation-"));

  beforeAll(async () => {
    const [httpPort, smtpPort] = [await freePort(), await freePort()];
    hooks = await webhookServer(httpPort, { flaky: [500, 503], gone: [404] });
    smtp = await smtpSink(smtpPort);
    process.env.FIONA_TEST_HOOK_TOKEN = "s3cret";
    const hook = (p: string) => ({ type: "webhook", url: `http://127.0.0.1:${httpPort}/${p}` }) as const;
    const automation: FionaConfigInput["automation"] = {
      subscriptions: [
        {
          name: "arrived-hook",
          trigger: { type: "study-arrived", project: "MRI1" },
          action: { ...hook("arrived"), headers: { Authorization: "$ENV:FIONA_TEST_HOOK_TOKEN" } },
        },
        { name: "flaky-hook", trigger: { type: "transfer-done" }, action: hook("flaky"), attempts: 4 },
        { name: "gone-hook", trigger: { type: "transfer-failed" }, action: hook("gone"), attempts: 4 },
        {
          name: "disk-cmd",
          trigger: { type: "disk-above" },
          action: {
            type: "command",
            argv: [
              "/bin/sh",
              "-c",
              `cat > "${outDir}/stdin.json"; printf %s "$FIONA_EVENT" > "${outDir}/env.json"`,
            ],
          },
        },
        {
          name: "failing-cmd",
          trigger: { type: "disk-above", percent: 99 },
          action: { type: "command", argv: ["/bin/false"] },
          attempts: 2,
        },
        {
          name: "hb-mail",
          trigger: { type: "heartbeat-failing" },
          action: {
            type: "email",
            to: ["pacs-admin@example.org"],
            smtp: { host: "127.0.0.1", port: smtpPort, from: "fiona@example.org" },
          },
        },
      ],
    };
    cfg = testConfig({ automation });
    redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
    // The queue's own backoff is seconds; retries here use a short fixed one.
    queue = new Queue("automation", {
      connection: redis,
      prefix: cfg.redis.prefix,
      defaultJobOptions: { attempts: 6, backoff: { type: "fixed", delay: 50 } },
    }) as TypedQueue<"automation">;
    events = new QueueEvents("automation", { connection: redis.duplicate(), prefix: cfg.redis.prefix });
    worker = new Worker(
      "automation",
      automationProcessor({ cfg, log: createLogger("silent") }) as Processor,
      {
        connection: redis.duplicate(),
        prefix: cfg.redis.prefix,
      },
    );
    await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
  });

  afterAll(async () => {
    await worker.close();
    await events.close();
    await queue.close();
    redis.disconnect();
    await Promise.all([hooks.close(), smtp.close()]);
    await cleanup(cfg);
  });

  const finished = async (jobId: string) =>
    waitFor(async () => {
      const state = await queue.getJobState(jobId);
      return state === "completed" || state === "failed" ? state : undefined;
    }, `job ${jobId}`);

  it("POSTs the event as JSON to the webhook, with the header taken from the environment", async () => {
    const trigger = {
      type: "study-arrived",
      studyInstanceUid: "1.2.826.0.1.3680043.8.498.1",
      project: "MRI1",
      calledAe: "FIONA",
      callingAe: "SCANNER",
    } as const;
    expect(await emitAutomation(cfg, queue, trigger, "1")).toBe(1);
    // The same occurrence again (a retried stage) adds nothing.
    await emitAutomation(cfg, queue, trigger, "1");
    const [job] = await queue.getJobs(["waiting", "active", "completed"]);
    expect(await finished(job!.id!)).toBe("completed");
    expect(await queue.getJobCountByTypes("waiting", "active", "completed", "failed", "delayed")).toBe(1);
    const hit = hooks.hits.arrived!;
    expect(hit).toHaveLength(1);
    expect(hit[0]!.headers.authorization).toBe("s3cret");
    expect(hit[0]!.headers["content-type"]).toBe("application/json");
    expect(hit[0]!.body).toMatchObject({
      source: "fiona",
      subscription: "arrived-hook",
      trigger: "study-arrived",
      jobId: job!.id,
      subject: {
        studyInstanceUid: trigger.studyInstanceUid,
        project: "MRI1",
        calledAe: "FIONA",
        callingAe: "SCANNER",
      },
    });
    // The secret is in no job data.
    expect(JSON.stringify((await queue.getJob(job!.id!))!.data)).not.toContain("s3cret");
  });

  it("retries a webhook that answers 5xx until it succeeds", async () => {
    const t = {
      type: "transfer-done",
      requestId: "req-1",
      project: "MRI1",
      studyInstanceUid: "1.2.3",
    } as const;
    await emitAutomation(cfg, queue, t, "1");
    const [job] = await queue.getJobs(["waiting", "active", "delayed", "completed"]);
    const id = (await queue.getJobs(["waiting", "active", "delayed", "completed"])).find(
      (j) => j.data.subscription === "flaky-hook",
    )!.id!;
    expect(job).toBeDefined();
    expect(await finished(id)).toBe("completed");
    expect(hooks.hits.flaky!.map((h) => h.status)).toEqual([500, 503, 200]);
    expect((await queue.getJob(id))!.attemptsMade).toBe(3);
  });

  it("fails a webhook that answers 404 at once, without retries", async () => {
    const t = {
      type: "transfer-failed",
      requestId: "req-2",
      project: "CT",
      studyInstanceUid: "1.2.4",
      error: "association refused",
    } as const;
    await emitAutomation(cfg, queue, t, "1");
    const id = (await queue.getJobs(["waiting", "active", "delayed", "failed"])).find(
      (j) => j.data.subscription === "gone-hook",
    )!.id!;
    expect(await finished(id)).toBe("failed");
    const job = (await queue.getJob(id))!;
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/answered 404/);
    expect(hooks.hits.gone).toHaveLength(1);
    expect(hooks.hits.gone![0]!.body).toMatchObject({
      subject: { error: "association refused", requestId: "req-2" },
    });
  });

  it("runs a command with the event on stdin and in FIONA_EVENT; a failing command is retried then fails", async () => {
    const t = { type: "disk-above", percent: 99.5, threshold: 90, path: cfg.dataDir } as const;
    expect(await emitAutomation(cfg, queue, t)).toBe(2);
    const jobs = await queue.getJobs(["waiting", "active", "delayed", "completed", "failed"]);
    const ok = jobs.find((j) => j.data.subscription === "disk-cmd")!.id!;
    const bad = jobs.find((j) => j.data.subscription === "failing-cmd")!.id!;
    expect(await finished(ok)).toBe("completed");
    const stdin = JSON.parse(readFileSync(path.join(outDir, "stdin.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(stdin).toMatchObject({
      trigger: "disk-above",
      subject: { percent: 99.5, threshold: 90, path: cfg.dataDir },
    });
    expect(JSON.parse(readFileSync(path.join(outDir, "env.json"), "utf8"))).toEqual(stdin);
    expect(await finished(bad)).toBe("failed");
    const failed = (await queue.getJob(bad))!;
    expect(failed.attemptsMade).toBe(2);
    expect(failed.failedReason).toMatch(/exited with 1/);
  });

  it("mails the event through SMTP", async () => {
    await emitAutomation(cfg, queue, { type: "heartbeat-failing", consecutiveFailures: 3 });
    const id = (await queue.getJobs(["waiting", "active", "delayed", "completed", "failed"])).find(
      (j) => j.data.subscription === "hb-mail",
    )!.id!;
    expect(await finished(id)).toBe("completed");
    expect(smtp.messages).toHaveLength(1);
    const msg = smtp.messages[0]!;
    expect(msg).toMatch(/^To: pacs-admin@example\.org/m);
    expect(msg).toMatch(/^Subject: FIONA heartbeat-failing \(hb-mail\)/m);
    expect(msg).toContain('"consecutiveFailures": 3');
  });
});
