/**
 * No patient identifier in Redis, not even hashed without a key: a study with marker values in
 * AccessionNumber, PatientName and PatientID goes through the real receiver and workers (arrival, a
 * coupling list matching it by accession number, its transfer, an export), then every key under the
 * prefix is read, whatever its type (hashes, sets, sorted sets, streams, lists, strings, BullMQ's job
 * hashes and logs), and searched for the markers and their plain SHA-256. The web shows the accession
 * number only where the site shows patient identity.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { ExportStore } from "../../src/export/store.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/server.js";
import { identifierDigest, identifierKey } from "../../src/registry/identifier-key.js";
import { TransferRegistry, type TransferRecord } from "../../src/registry/transfers.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { startWeb, type WebHandle } from "../../src/web/server.js";
import { storescu } from "../receiver/helpers.js";
import { cleanup, testConfig, waitFor } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { authOf, roleUsers } from "../web/roles-kit.js";

const MARKERS = {
  accessionNumber: "ACC-NOPHI-4711",
  patientName: "NOPHI^MARKED",
  patientId: "PID-NOPHI-4711",
};
const tmp = (tag: string) => mkdtempSync(path.join(tmpdir(), `fiona-nophi-${tag}-`));
const logLines: string[] = [];
const log = pino(
  { level: "debug" },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

let cfg: FionaConfig;
let redis: Redis;
let pacs: Storescp;
let receiver: ReceiverHandle;
let workers: WorkersHandle;
let web: WebHandle;
let webShowingIdentity: WebHandle;
let study: GeneratedStudy;
let transfer: TransferRecord;

async function get(base: WebHandle, p: string): Promise<string> {
  const res = await fetch(`${base.url}${p}`, { headers: authOf("operator") });
  expect(res.status).toBe(200);
  return res.text();
}

/** Every key under the prefix with everything it holds, as text. */
async function everythingInRedis(): Promise<string> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${cfg.redis.prefix}:*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) {
      out.push(key);
      const type = await redis.type(key);
      const value =
        type === "string"
          ? await redis.get(key)
          : type === "hash"
            ? await redis.hgetall(key)
            : type === "set"
              ? await redis.smembers(key)
              : type === "zset"
                ? await redis.zrange(key, 0, -1, "WITHSCORES")
                : type === "list"
                  ? await redis.lrange(key, 0, -1)
                  : type === "stream"
                    ? await redis.xrange(key, "-", "+")
                    : `(type ${type})`;
      out.push(JSON.stringify(value));
    }
  } while (cursor !== "0");
  return out.join("\n");
}

beforeAll(async () => {
  pacs = await startStorescp(tmp("pacs"), ["+xa"]);
  cfg = testConfig({
    secret: "no-phi-secret-0123456789",
    arrival: { quietSeconds: 1 },
    projects: [
      {
        name: "PROJ",
        participantPattern: "PROJ_[0-9]{4}",
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port },
      },
    ],
    web: { users: roleUsers() },
  });
  redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null });
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
  receiver = await startReceiver(cfg, { log, port: 0, host: "127.0.0.1" });
  const webOpts = { connection: redis, logger: log, port: 0, host: "127.0.0.1" };
  web = await startWeb({ config: cfg, ...webOpts });
  webShowingIdentity = await startWeb({
    config: { ...cfg, web: { ...cfg.web, showPatientIdentity: true } },
    ...webOpts,
  });
  study = generateStudy({
    outDir: tmp("gen"),
    seed: "no-phi-1",
    series: 2,
    instancesPerSeries: 2,
    fileSize: 2048,
    phi: MARKERS,
  });

  // The coupling list comes first: the study's arrival applies it, matching the accession number.
  const coupling = await fetch(`${web.url}/api/coupling`, {
    method: "POST",
    headers: { ...authOf("operator"), "Content-Type": "text/csv" },
    body: `AccessionNumber,ProjectName,subjectid,eventname\n${MARKERS.accessionNumber},PROJ,PROJ_0007,\n`,
  });
  expect(coupling.status).toBe(200);
  expect(((await coupling.json()) as { stored: number }).stored).toBe(1);

  const sent = await storescu(receiver.port, study.files);
  expect(sent.code).toBe(0);
  const transfers = new TransferRegistry(redis, cfg.redis.prefix);
  transfer = await waitFor(
    async () => (await transfers.forStudy(study.studyInstanceUid)).find((t) => t.status !== "queued"),
    "the coupled transfer to finish",
    60_000,
    100,
  );

  const exported = await fetch(`${web.url}/api/exports`, {
    method: "POST",
    headers: { ...authOf("operator"), "Content-Type": "application/json" },
    body: JSON.stringify({
      studyInstanceUid: study.studyInstanceUid,
      project: "PROJ",
      participant: "PROJ_0007",
    }),
  });
  expect(exported.status).toBe(202);
  const { id } = (await exported.json()) as { id: string };
  const store = new ExportStore(cfg);
  await waitFor(async () => (await store.get(id))?.status === "done", "the export", 30_000, 100);
}, 120_000);

afterAll(async () => {
  await webShowingIdentity?.close();
  await web?.close();
  await receiver?.close();
  await workers?.close();
  await pacs?.stop();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

describe("patient identifiers and Redis", () => {
  it("a coupling list still matches the study by its accession number", () => {
    expect(transfer).toMatchObject({
      status: "done",
      requestedBy: "coupling",
      project: "PROJ",
      participant: "PROJ_0007",
      filesSent: 4,
    });
  });

  it("no key or value holds an identifier, in clear or as its unkeyed SHA-256", async () => {
    const all = await everythingInRedis();
    // The pipeline did write what is searched: job hashes, the registry, coupling rows, the audit stream.
    expect(all).toContain(`${cfg.redis.prefix}:send:`);
    expect(all).toContain(study.studyInstanceUid);
    expect(all).toContain("PROJ_0007");
    for (const [what, marker] of Object.entries(MARKERS)) {
      expect(all, `${what} in Redis`).not.toContain(marker);
      expect(all, `${what} (upper case) in Redis`).not.toContain(marker.toUpperCase());
      const plain = createHash("sha256").update(marker).digest("hex");
      expect(all, `${what}'s SHA-256 in Redis`).not.toContain(plain.slice(0, 24));
    }
    // Nor any other identifying value of the files (station, institution, physicians, birth date…).
    expect(all).not.toContain("PHIMARK");
    expect(all).not.toContain(study.phi.patientBirthDate);
    // The accession number's index is there, under its keyed digest.
    const keyed = identifierDigest(identifierKey(cfg), "accession", MARKERS.accessionNumber);
    const plain = createHash("sha256").update(MARKERS.accessionNumber).digest("hex").slice(0, 32);
    expect(keyed).not.toBe(plain);
    expect(await redis.smembers(`${cfg.redis.prefix}:registry:accession:${keyed}`)).toEqual([
      study.studyInstanceUid,
    ]);
  });

  it("and none in the logs", () => {
    const logs = logLines.join("");
    expect(logs).toContain("transfer finished");
    for (const [what, marker] of Object.entries(MARKERS))
      expect(logs, `${what} logged`).not.toContain(marker);
  });

  it("the incoming list shows the accession number only where the site shows patient identity", async () => {
    const hidden = await get(web, "/api/studies");
    expect(hidden).toContain(study.studyInstanceUid);
    for (const marker of Object.values(MARKERS)) expect(hidden).not.toContain(marker);
    expect(await get(web, `/api/studies/${study.studyInstanceUid}`)).not.toContain(MARKERS.accessionNumber);
    // Searching by the exact number finds the study without showing the number.
    const found = await get(web, `/api/studies?accession=${MARKERS.accessionNumber}`);
    expect((JSON.parse(found) as Array<{ studyInstanceUid: string }>).map((s) => s.studyInstanceUid)).toEqual(
      [study.studyInstanceUid],
    );
    expect(found).not.toContain(MARKERS.accessionNumber);

    const shown = JSON.parse(await get(webShowingIdentity, "/api/studies")) as Array<Record<string, string>>;
    expect(shown.find((s) => s.studyInstanceUid === study.studyInstanceUid)).toMatchObject({
      accessionNumber: MARKERS.accessionNumber,
      patientId: MARKERS.patientId,
    });
  });
});
