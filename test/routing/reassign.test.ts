import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { FlowProducer } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { AuditLog } from "../../src/registry/audit.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { assignStudy } from "../../src/routing/assign.js";
import { startCandidates, couplingCandidate } from "../../src/routing/candidates.js";
import { createRoutingDeps, type RoutingDeps } from "../../src/routing/deps.js";
import { ReassignmentRefused } from "../../src/transfer/reassign.js";
import { startWeb } from "../../src/web/server.js";
import { authOf, roleUsers } from "../web/roles-kit.js";
import { fionaCli } from "../support/cli.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { receiveLocally } from "../support/pipeline.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-reassign-${tag}-`));
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let flow: FlowProducer;
let routing: RoutingDeps;
let pacs: Storescp;
let study: GeneratedStudy;
let fiona: (...args: string[]) => Promise<string>;

const request = (participant: string) => ({
  studyInstanceUid: study.studyInstanceUid,
  project: "PROJ",
  participant,
  requestedBy: "test",
});

async function finished(requestId: string, run = 1): Promise<TransferRecord> {
  return waitFor(
    async () => {
      const t = await routing.transfers.get(requestId);
      return t && t.runs >= run && t.status !== "queued" ? t : undefined;
    },
    "transfer to finish",
    60_000,
    100,
  );
}

/** A study of three files, received and ingested. */
async function receivedStudy(seed: string): Promise<GeneratedStudy> {
  const s = generateStudy({ outDir: tmp("gen"), seed, series: 1, instancesPerSeries: 3, fileSize: 4096 });
  await receiveLocally(cfg, redis, s);
  await waitFor(async () => {
    try {
      return (
        readdirSync(routing.paths.rawSeriesDir(s.studyInstanceUid, s.seriesInstanceUids[0]!)).length === 3 ||
        undefined
      );
    } catch {
      return undefined;
    }
  }, "ingest");
  await waitFor(
    async () => (await routing.studies.get(s.studyInstanceUid)) || undefined,
    "the study in the incoming list",
  );
  return s;
}

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  cfg = testConfig({
    secret: "reassign-secret-0123456789",
    arrival: { quietSeconds: 1 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  flow = new FlowProducer({ connection: redis, prefix: cfg.redis.prefix });
  routing = createRoutingDeps(
    {
      cfg,
      paths: new SitePaths(cfg.dataDir),
      flow,
      transfers: new TransferRegistry(redis, cfg.redis.prefix),
      log,
    },
    redis,
  );
  study = generateStudy({
    outDir: tmp("gen"),
    seed: "reassign",
    series: 1,
    instancesPerSeries: 3,
    fileSize: 4096,
  });
  await receiveLocally(cfg, redis, study);
  await waitFor(async () => {
    try {
      return (
        readdirSync(routing.paths.rawSeriesDir(study.studyInstanceUid, study.seriesInstanceUids[0]!))
          .length === 3 || undefined
      );
    } catch {
      return undefined;
    }
  }, "ingest");
  fiona = fionaCli(cfg);
});

afterAll(async () => {
  await workers?.close();
  await flow?.close();
  redis?.disconnect();
  await pacs?.stop();
  if (cfg) await cleanup(cfg);
});

describe("re-assignment to another participant of the same project", () => {
  it("is refused once the study was sent, and goes ahead when confirmed", async () => {
    const first = await assignStudy(routing, request("PROJ_0005"));
    expect(await finished(first.requestId)).toMatchObject({ status: "done", filesSent: 3 });

    const refused = await assignStudy(routing, request("PROJ_0006")).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ReassignmentRefused);
    expect((refused as Error).message).toMatch(/already sent for PROJ as participant PROJ_0005/);
    expect(await routing.transfers.forStudy(study.studyInstanceUid)).toHaveLength(1);

    // The same participant again is not a re-assignment.
    await expect(assignStudy(routing, request("PROJ_0005"))).resolves.toMatchObject({ run: 2 });
    await finished(first.requestId, 2);

    const confirmed = await assignStudy(routing, request("PROJ_0006"), { replace: true });
    expect(confirmed.reassignedFrom).toEqual(["PROJ_0005"]);
    expect(await finished(confirmed.requestId)).toMatchObject({ status: "done" });
  }, 90_000);

  it("is never done by a routing rule or coupling row", async () => {
    const [outcome] = await startCandidates(
      routing,
      study.studyInstanceUid,
      [couplingCandidate(study.studyInstanceUid, { line: 1, project: "PROJ", participant: "PROJ_0007" })],
      false,
    );
    expect(outcome).toMatchObject({ status: "invalid", participant: "PROJ_0007" });
    expect(outcome!.error).toMatch(/a person must confirm a re-assignment/);
  });

  it("needs --replace on the CLI, and is audited with the operating-system user", async () => {
    await expect(fiona("assign", study.studyInstanceUid, "-p", "PROJ", "-s", "PROJ_0008")).rejects.toThrow(
      /already sent for PROJ as participant/,
    );
    const out = await fiona("assign", study.studyInstanceUid, "-p", "PROJ", "-s", "PROJ_0008", "--replace");
    expect(out).toMatch(/re-assigned from PROJ_0005, PROJ_0006|re-assigned from PROJ_0006, PROJ_0005/);
    const [entry] = await new AuditLog(redis, cfg.redis.prefix).list({ limit: 1 });
    expect(entry).toMatchObject({
      action: "reassign",
      via: "cli",
      participant: "PROJ_0008",
      project: "PROJ",
    });
    expect(entry!.user).toBe(userInfo().username);
  }, 60_000);
});

describe("re-assignment through the API", () => {
  it("is a 409 with code reassign on the API, and goes ahead with replace: true", async () => {
    const own = await receivedStudy("reassign-web");
    const mine = (participant: string) => ({
      ...request(participant),
      studyInstanceUid: own.studyInstanceUid,
    });
    const first = await assignStudy(routing, mine("PROJ_0001"));
    await finished(first.requestId);
    const web = await startWeb({
      config: { ...cfg, web: { ...cfg.web, users: roleUsers() as FionaConfig["web"]["users"] } },
      connection: redis,
      logger: log,
      port: 0,
      host: "127.0.0.1",
    });
    try {
      const post = (body: object) =>
        fetch(`${web.url}/api/transfers`, {
          method: "POST",
          headers: { ...authOf("operator"), "Content-Type": "application/json" },
          body: JSON.stringify({ studyInstanceUid: own.studyInstanceUid, project: "PROJ", ...body }),
        });
      const refused = await post({ participant: "PROJ_0002" });
      expect(refused.status, await refused.clone().text()).toBe(409);
      expect(await refused.json()).toMatchObject({ code: "reassign", participants: ["PROJ_0001"] });
      const confirmed = await post({ participant: "PROJ_0002", replace: true });
      expect(confirmed.status).toBe(202);
      const { requestId } = (await confirmed.json()) as { requestId: string };
      await finished(requestId);
      const [entry] = await new AuditLog(redis, cfg.redis.prefix).list({ limit: 1 });
      expect(entry).toMatchObject({ action: "reassign", user: "otto", participant: "PROJ_0002" });
    } finally {
      await web.close();
    }
  }, 90_000);
});
