import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { WORKER_QUEUES } from "../../src/processors/index.js";
import { startWorkers, type WorkersHandle } from "../../src/roles/workers.js";
import { attachFile, waitForUpload } from "../../src/wsi/cli.js";
import { uploadStore } from "../../src/wsi/uploads.js";
import { cleanup, testConfig } from "../support/env.js";
import { startOrthanc, type Orthanc } from "../support/peers.js";
import { vipsPyramid } from "./support/fixtures.js";

const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
let dir: string;
let cfg: FionaConfig;
let redis: Redis;
let workers: WorkersHandle;
let orthanc: Orthanc;

const get = async <T>(p: string): Promise<T> => (await fetch(`${orthanc.url}${p}`)).json() as Promise<T>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "fiona-wsi-pipeline-"));
  orthanc = await startOrthanc(path.join(dir, "orthanc"));
  cfg = testConfig({
    secret: "test-secret-0123456789",
    transfer: { backoffMs: 300, attempts: 3, timeoutMs: 10_000 },
    projects: [
      {
        name: "PATHO",
        participantPattern: "PATHO_[0-9]{4}",
        events: ["baseline"],
        destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: orthanc.dicomPort },
      },
    ],
  });
  redis = new Redis(cfg.redis.url);
  workers = await startWorkers(cfg, log, WORKER_QUEUES);
});

afterAll(async () => {
  await workers?.close();
  redis?.disconnect();
  await orthanc?.stop();
  if (cfg) await cleanup(cfg);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const attach = { project: "PATHO", participant: "PATHO_0001", event: "baseline" };

describe("fiona attach → wsi → send", () => {
  it("converts an attached pyramid, sends it to the PACS, records the transfer and deletes the upload", async () => {
    const slide = vipsPyramid(dir, { width: 1200, height: 900, name: "attach.tif" });
    const upload = await attachFile(cfg, slide, {
      ...attach,
      meta: ["patho_stain=HE", "block=A1", "slideNr=2", "specimen=Colon biopsy"],
    });
    expect(upload.state).toBe("complete");
    const done = await waitForUpload(cfg, upload.id, 100);
    expect(done.error).toBeUndefined();
    expect(done.state).toBe("sent");

    const transfer = await new TransferRegistry(redis, cfg.redis.prefix).get(done.requestId!);
    expect(transfer).toMatchObject({
      status: "done",
      filesFailed: 0,
      project: "PATHO",
      participant: "PATHO_0001",
    });

    // One instance per pyramid level, counted by libvips (1200x900 halved down to one tile).
    const levelCount = Number(execFileSync("vipsheader", ["-f", "n-pages", slide], { encoding: "utf8" }));
    expect(levelCount).toBeGreaterThan(2);
    const instances = await get<string[]>("/instances");
    expect(instances.length).toBe(levelCount);
    expect(transfer!.filesSent).toBe(levelCount);
    const tags = await get<Record<string, string>>(`/instances/${instances[0]}/simplified-tags`);
    expect(tags.PatientID).toBe("PATHO_0001");
    expect(tags.SOPClassUID).toBe("1.2.840.10008.5.1.4.1.1.77.1.6");
    expect(tags.InstitutionName).toBe("PATHO");
    expect(tags.ReferringPhysicianName).toBe("EventName:baseline");
    expect(tags.StudyInstanceUID).toBe(transfer!.pseudoStudyInstanceUid);

    const store = uploadStore(cfg);
    expect(existsSync(store.slidePath(done))).toBe(false);
    expect(existsSync(path.join(store.dir(upload.id), "upload.json"))).toBe(true);
  });

  it("fails a truncated TIFF with a clear message, keeps the file and sends nothing", async () => {
    const full = readFileSync(vipsPyramid(dir, { name: "to-truncate.tif" }));
    const truncated = path.join(dir, "truncated.tif");
    writeFileSync(truncated, full.subarray(0, Math.floor(full.length / 2)));
    const before = (await get<string[]>("/instances")).length;

    const upload = await attachFile(cfg, truncated, attach);
    const done = await waitForUpload(cfg, upload.id, 100);
    expect(done.state).toBe("failed");
    expect(done.error).toMatch(/^truncated TIFF: /);
    expect(done.requestId).toBeUndefined();

    const store = uploadStore(cfg);
    expect(await store.get(upload.id)).toMatchObject({ state: "failed", error: done.error });
    expect(statSync(store.slidePath(done)).size).toBe(Math.floor(full.length / 2));
    expect((await get<string[]>("/instances")).length).toBe(before);
  });

  it("refuses a participant outside the project's pattern before storing anything", async () => {
    const slide = path.join(dir, "attach.tif");
    await expect(attachFile(cfg, slide, { ...attach, participant: "someone" })).rejects.toThrow(
      /does not match project PATHO's pattern/,
    );
    await expect(attachFile(cfg, slide, { ...attach, project: "NOPE" })).rejects.toThrow(
      /unknown project NOPE/,
    );
  });
});
