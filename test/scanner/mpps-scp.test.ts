/**
 * The MPPS SCP against a real Redis: what it stores (identifiers only, never the patient data an
 * N-CREATE carries), its failure statuses, and the scanner-pull job an in-progress step starts.
 */
import { rmSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { QUEUES, createQueue } from "../../src/queues/index.js";
import { pullDedupId } from "../../src/scanner/enqueue.js";
import { startMppsScp, type MppsScpHandle } from "../../src/scanner/mpps-scp.js";
import { MppsStore } from "../../src/scanner/mpps-store.js";
import { MPPS_STATUS } from "../../src/scanner/mpps-step.js";
import { RawScu } from "../receiver/raw-scu.js";
import { cleanup, testConfig } from "../support/env.js";
import { createDataset, nCreate, nSet, type MppsPeer } from "./mpps-client.js";

const PHI = {
  patientName: "MPPSMARK^NAME",
  patientId: "MPPSMARK_PID",
  birthDate: "19020304",
  accession: "MPPSMARK_ACC",
};
const STUDY = "1.2.826.0.1.3680043.10.1.1";
const MPPS_SOP_CLASS_UID = "1.2.840.10008.3.1.2.3.3";
const SERIES = "1.2.826.0.1.3680043.10.1.1.1";

let cfg: FionaConfig;
let scp: MppsScpHandle;
let redis: Redis;
let store: MppsStore;
let scanner: MppsPeer;

beforeAll(async () => {
  cfg = testConfig({
    scanners: { list: [{ name: "MR1", aeTitle: "MRSCANNER", host: "127.0.0.1", port: 1 }] },
  });
  scp = await startMppsScp(cfg, { port: 0, log: createLogger("silent") });
  redis = new Redis(cfg.redis.url);
  store = new MppsStore(redis, cfg.redis.prefix, cfg.scanners.giveUpHours);
  scanner = { port: scp.port, callingAe: "MRSCANNER" };
});

afterAll(async () => {
  await scp?.close();
  redis?.disconnect();
  if (cfg) await cleanup(cfg);
});

/** Every string value under the test prefix (keys, strings, hashes, lists, sets, zsets, streams). */
async function everythingInRedis(): Promise<string> {
  const keys = await redis.keys(`${cfg.redis.prefix}:*`);
  const parts: string[] = [...keys];
  for (const k of keys) {
    const type = await redis.type(k);
    if (type === "string") parts.push((await redis.get(k)) ?? "");
    else if (type === "hash") parts.push(JSON.stringify(await redis.hgetall(k)));
    else if (type === "set") parts.push(JSON.stringify(await redis.smembers(k)));
    else if (type === "list") parts.push(JSON.stringify(await redis.lrange(k, 0, -1)));
    else if (type === "zset") parts.push(JSON.stringify(await redis.zrange(k, 0, -1)));
    else if (type === "stream") parts.push(JSON.stringify(await redis.xrange(k, "-", "+")));
  }
  return parts.join("\n");
}

describe("MPPS SCP", () => {
  const sop = "1.2.826.0.1.3680043.10.1.9.1";

  it("stores an in-progress step with identifiers only and queues the study's pull", async () => {
    const answer = await nCreate(
      scanner,
      sop,
      createDataset(STUDY, PHI, [{ seriesInstanceUid: SERIES, images: 2 }]),
    );
    expect(answer.status).toBe(MPPS_STATUS.Success);
    const step = await store.get(sop);
    expect(step).toMatchObject({
      sopInstanceUid: sop,
      scanner: "MR1",
      callingAe: "MRSCANNER",
      status: "IN PROGRESS",
      studyInstanceUids: [STUDY],
      start: "20261203101500",
      series: [{ seriesInstanceUid: SERIES, images: 2 }],
    });
    expect(Object.keys(step!).sort()).toEqual(
      [
        "callingAe",
        "createdAt",
        "scanner",
        "series",
        "sopInstanceUid",
        "start",
        "status",
        "studyInstanceUids",
        "updatedAt",
      ].sort(),
    );
    const queue = createQueue(QUEUES.scannerPull, redis, cfg.redis.prefix);
    const jobId = await queue.getDeduplicationJobId(pullDedupId(STUDY));
    const job = await queue.getJob(jobId!);
    expect(job?.data).toMatchObject({ studyInstanceUid: STUDY, scanner: "MR1", trigger: "mpps" });
    await queue.close();
  });

  it("refuses a second N-CREATE of the same instance (Duplicate SOP Instance)", async () => {
    const answer = await nCreate(scanner, sop, createDataset(STUDY, PHI));
    expect(answer.status).toBe(MPPS_STATUS.DuplicateSopInstance);
  });

  it("completes the step with N-SET, then refuses further changes (Processing Failure)", async () => {
    const done = await nSet(scanner, sop, "COMPLETED", [{ seriesInstanceUid: SERIES, images: 3 }]);
    expect(done.status).toBe(MPPS_STATUS.Success);
    expect(await store.get(sop)).toMatchObject({
      status: "COMPLETED",
      end: "20261203103000",
      series: [{ seriesInstanceUid: SERIES, images: 3 }],
    });
    const again = await nSet(scanner, sop, "DISCONTINUED");
    expect(again.status).toBe(MPPS_STATUS.ProcessingFailure);
    expect((await store.get(sop))?.status).toBe("COMPLETED");
  });

  it("answers N-SET of an unknown instance with No Such SOP Instance", async () => {
    const answer = await nSet(scanner, "1.2.826.0.1.3680043.10.1.9.404", "COMPLETED");
    expect(answer.status).toBe(MPPS_STATUS.NoSuchSopInstance);
  });

  it("refuses an N-CREATE that is not IN PROGRESS, or whose StudyInstanceUID is not a UID", async () => {
    const completed = { ...createDataset(STUDY, PHI), PerformedProcedureStepStatus: "COMPLETED" };
    expect((await nCreate(scanner, "1.2.826.0.1.3680043.10.1.9.2", completed)).status).toBe(
      MPPS_STATUS.InvalidAttributeValue,
    );
    const badUid = createDataset("../../etc", PHI);
    expect((await nCreate(scanner, "1.2.826.0.1.3680043.10.1.9.3", badUid)).status).toBe(
      MPPS_STATUS.InvalidAttributeValue,
    );
    const noStudy = { ...createDataset(STUDY, PHI), ScheduledStepAttributesSequence: [] };
    expect((await nCreate(scanner, "1.2.826.0.1.3680043.10.1.9.4", noStudy)).status).toBe(
      MPPS_STATUS.MissingAttribute,
    );
    expect(await store.get("1.2.826.0.1.3680043.10.1.9.2")).toBeUndefined();
  });

  it("assigns a SOP Instance UID when the N-CREATE leaves it to the SCP", async () => {
    const answer = await nCreate(scanner, "", createDataset("1.2.826.0.1.3680043.10.1.2", PHI));
    expect(answer.status).toBe(MPPS_STATUS.Success);
    expect(answer.sopInstanceUid).toMatch(/^2\.25\.\d+$/);
    expect((await store.get(answer.sopInstanceUid))?.studyInstanceUids).toEqual([
      "1.2.826.0.1.3680043.10.1.2",
    ]);
  });

  it("answers an unknown caller Success and stores nothing", async () => {
    const other = { port: scp.port, callingAe: "OTHERMOD" };
    const unknownSop = "1.2.826.0.1.3680043.10.1.9.5";
    expect((await nCreate(other, unknownSop, createDataset("1.2.826.0.1.3680043.10.1.3", PHI))).status).toBe(
      MPPS_STATUS.Success,
    );
    expect(await store.get(unknownSop)).toBeUndefined();
    expect(await store.forStudy("1.2.826.0.1.3680043.10.1.3")).toEqual([]);
  });

  it("answers Processing Failure when Redis is gone, and keeps nothing half-written", async () => {
    const down = testConfig({
      redis: { url: "redis://127.0.0.1:1", prefix: "down", startLocal: false },
      scanners: cfg.scanners,
    });
    const scp2 = await startMppsScp(down, { port: 0, log: createLogger("silent") });
    try {
      const answer = await nCreate(
        { port: scp2.port, callingAe: "MRSCANNER" },
        "1.2.826.0.1.3680043.10.1.9.6",
        createDataset(STUDY, PHI),
      );
      expect(answer.status).toBe(MPPS_STATUS.ProcessingFailure);
    } finally {
      await scp2.close();
      rmSync(down.dataDir, { recursive: true, force: true });
    }
  });

  it("never writes the patient's name, ID, birth date or accession number to Redis", async () => {
    const all = await everythingInRedis();
    expect(all).toContain(STUDY);
    for (const marker of Object.values(PHI)) expect(all).not.toContain(marker);
  });

  it("refuses hostile association requests in front of the library and keeps serving", async () => {
    // 129 presentation contexts (ids repeat past 255) crashed dcmjs-dimse's A-ASSOCIATE-AC encoder.
    const many = Array.from({ length: 129 }, (_, i) => ({
      id: (i * 2 + 1) % 256,
      abstractSyntax: MPPS_SOP_CLASS_UID,
      transferSyntaxes: ["1.2.840.10008.1.2"],
    }));
    const flood = await RawScu.connect("127.0.0.1", scp.port);
    const rj = await flood.associate("MRSCANNER", "FIONA", many);
    expect(rj.accepted).toBe(false);
    expect(rj.reject?.result).toBe(1);

    // Lengths past the end: A-ABORT (or a close), not an exception.
    const broken = await RawScu.connect("127.0.0.1", scp.port);
    const fixed = Buffer.concat([Buffer.from([0, 1, 0, 0]), Buffer.alloc(64, 0x41)]); // version, AE titles
    const overrun = Buffer.from([0x10, 0, 0xff, 0xff, 1, 2, 3, 4, 5, 6]); // item claims 65535 bytes
    const head = Buffer.from([0x01, 0, 0, 0, 0, fixed.length + overrun.length]);
    broken.write(Buffer.concat([head, fixed, overrun]));
    const reply = await broken.nextPdu();
    expect(reply.length === 0 || reply[0] === 0x07).toBe(true);

    const answer = await nCreate(scanner, "1.2.826.0.1.3680043.10.1.9.7", createDataset(STUDY, PHI));
    expect(answer.status).toBe(MPPS_STATUS.Success);
  });

  it("closes a connection that sends no A-ASSOCIATE-RQ within the ARTIM time", async () => {
    const quick = testConfig({ receiver: { artimSeconds: 0.3 }, scanners: cfg.scanners });
    const scp3 = await startMppsScp(quick, { port: 0, log: createLogger("silent") });
    try {
      const idle = await RawScu.connect("127.0.0.1", scp3.port);
      const t0 = Date.now();
      expect((await idle.nextPdu(5000)).length).toBe(0); // closed, nothing sent
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await scp3.close();
      rmSync(quick.dataDir, { recursive: true, force: true });
    }
  });
});
