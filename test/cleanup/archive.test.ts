import { promises as fs } from "node:fs";
import path from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runArchiveCleanup, type ArchiveCleanupDeps } from "../../src/cleanup/archive.js";
import { clearStaleLinks } from "../../src/cleanup/stale-links.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { createQueue } from "../../src/queues/index.js";
import { StudyRegistry } from "../../src/registry/studies.js";
import { TransferRegistry } from "../../src/registry/transfers.js";
import { cleanup, testConfig } from "../support/env.js";

const DAY = 86_400_000;
const now = Date.now();
let cfg: FionaConfig;
let redis: Redis;
let paths: SitePaths;
let studies: StudyRegistry;
let transfers: TransferRegistry;
let sendQueue: Queue;

/** E past retention, A and C transferred, B unsent, D with a queued transfer, F with a pending send job. */
const TREE = {
  "1.2.3.5": { ageDays: 40, transfer: undefined },
  "1.2.3.1": { ageDays: 10, transfer: "done" },
  "1.2.3.3": { ageDays: 5, transfer: "done" },
  "1.2.3.2": { ageDays: 20, transfer: undefined },
  "1.2.3.4": { ageDays: 60, transfer: "queued" },
  "1.2.3.6": { ageDays: 50, transfer: undefined },
} as const;
type Uid = keyof typeof TREE;
const reqId = (uid: string) => Buffer.from(uid).toString("hex").padEnd(16, "0");

async function buildTree() {
  await fs.rm(paths.site, { recursive: true, force: true });
  for (const [uid, s] of Object.entries(TREE)) {
    const archive = paths.archiveStudyDir(uid);
    await fs.mkdir(archive, { recursive: true });
    await fs.writeFile(path.join(archive, `MR.${uid}.1`), "x");
    const series = paths.rawSeriesDir(uid, `${uid}.9`);
    await fs.mkdir(series, { recursive: true });
    await fs.symlink(path.join(archive, `MR.${uid}.1`), path.join(series, `${uid}.1`));
    await fs.writeFile(paths.seriesJson(uid, `${uid}.9`), "{}");
    const person = path.join(paths.participants, `P${uid.slice(-1)}`);
    await fs.mkdir(person, { recursive: true });
    await fs.symlink(path.relative(person, paths.rawStudyDir(uid)), path.join(person, "20260101_120000"));
    const t = new Date(now - s.ageDays * DAY);
    await fs.utimes(archive, t, t);
    await studies.touch({ studyInstanceUid: uid, modalities: ["MR"] } as never, now - s.ageDays * DAY);
    if (s.transfer) {
      const id = reqId(uid);
      await transfers.startRun(
        id,
        { studyInstanceUid: uid, project: "P", participant: "S1", requestedBy: "test" },
        1,
      );
      await fs.mkdir(path.join(paths.outbox, id, `${uid}.9`), { recursive: true });
      if (s.transfer === "done")
        await transfers.finishRun(id, {
          status: "done",
          filesSent: 1,
          filesFailed: 0,
          filesDropped: 0,
          durationMs: 1,
        });
    }
  }
}

const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );
/** Disk use falls by 6 points per study folder removed: 6 studies = 96 %. */
const usage = async () => 60 + 6 * (await fs.readdir(paths.archive)).length;

function deps(): ArchiveCleanupDeps {
  return {
    cfg,
    paths,
    redis,
    studies,
    transfers,
    log: createLogger("silent"),
    pipelineQueues: [sendQueue],
    usage,
    now,
  };
}

beforeAll(async () => {
  cfg = testConfig({
    schedules: { archiveCleanup: { maxDiskPercent: 80, targetDiskPercent: 75, retentionDays: 30 } },
  });
  redis = new Redis(cfg.redis.url);
  paths = new SitePaths(cfg.dataDir);
  studies = new StudyRegistry(redis, cfg.redis.prefix, { retentionDays: 365 });
  transfers = new TransferRegistry(redis, cfg.redis.prefix);
  sendQueue = createQueue("send", redis, cfg.redis.prefix) as Queue;
  await sendQueue.add("send", { studyInstanceUid: "1.2.3.6" }, { delay: 60_000 });
  await buildTree();
});

afterAll(async () => {
  await sendQueue.close();
  redis.disconnect();
  await cleanup(cfg);
});

describe("archive cleanup on a data tree with an injected disk reading", () => {
  it("dry run plans in order and deletes nothing", async () => {
    const r = await runArchiveCleanup(deps(), true);
    expect(r.deleted.map((d) => d.studyInstanceUid)).toEqual(["1.2.3.5", "1.2.3.1", "1.2.3.3", "1.2.3.2"]);
    expect(r.protected.sort()).toEqual(["1.2.3.4", "1.2.3.6"]);
    expect((await fs.readdir(paths.archive)).length).toBe(6);
  });

  it("deletes past-retention and transferred studies oldest first until below target, never an active one", async () => {
    const r = await runArchiveCleanup(deps(), false);
    // 96 -> 90 -> 84 -> 78 -> 72 (< 75): four studies go; the unsent one last.
    expect(r.deleted.map((d) => [d.studyInstanceUid, d.reason])).toEqual([
      ["1.2.3.5", "past-retention"],
      ["1.2.3.1", "transferred"],
      ["1.2.3.3", "transferred"],
      ["1.2.3.2", "unsent-disk-full"],
    ]);
    expect(r.usedPercent).toBe(72);
    for (const uid of ["1.2.3.5", "1.2.3.1", "1.2.3.3", "1.2.3.2"] as Uid[]) {
      expect(await exists(paths.archiveStudyDir(uid))).toBe(false);
      expect(await exists(paths.rawStudyDir(uid))).toBe(false);
      expect(await exists(path.join(paths.participants, `P${uid.slice(-1)}`))).toBe(false);
      expect(await studies.get(uid)).toBeUndefined();
    }
    expect(await exists(path.join(paths.outbox, reqId("1.2.3.1")))).toBe(false);
    for (const uid of ["1.2.3.4", "1.2.3.6"]) {
      expect(await exists(paths.archiveStudyDir(uid))).toBe(true);
      expect(await exists(path.join(paths.participants, `P${uid.slice(-1)}`, "20260101_120000"))).toBe(true);
      expect(await studies.get(uid)).toBeDefined();
    }
    expect(await exists(path.join(paths.outbox, reqId("1.2.3.4")))).toBe(true);
  });

  it("does nothing while the disk is below the threshold", async () => {
    const r = await runArchiveCleanup({ ...deps(), usage: async () => 50 }, false);
    expect(r).toMatchObject({ usedPercent: 50, deleted: [] });
  });
});

describe("stale links", () => {
  it("removes broken links, empty folders and orphaned series JSON, and keeps what is intact", async () => {
    const uid = "1.2.3.4";
    // Break study 1.2.3.6's raw links by removing its archive, orphan a JSON, leave an empty folder.
    await fs.rm(paths.archiveStudyDir("1.2.3.6"), { recursive: true });
    await fs.writeFile(path.join(paths.rawStudyDir(uid), "1.2.3.4.77.json"), "{}");
    await fs.mkdir(path.join(paths.participants, "EMPTY"));
    const dry = await clearStaleLinks(paths, true);
    expect(await exists(path.join(paths.participants, "EMPTY"))).toBe(true);
    expect(dry).toEqual({ brokenLinks: 1, emptyDirs: 2, orphanedJson: 1 });
    const r = await clearStaleLinks(paths);
    // raw/1.2.3.6 goes (its link, then its emptied series folder and the JSON beside it), and with it
    // the participant link P6 that pointed there.
    expect(r).toEqual({ brokenLinks: 2, emptyDirs: 4, orphanedJson: 2 });
    expect(await exists(path.join(paths.participants, "P6"))).toBe(false);
    expect(await exists(path.join(paths.participants, "EMPTY"))).toBe(false);
    expect(await exists(paths.rawStudyDir("1.2.3.6"))).toBe(false);
    expect(await exists(paths.seriesJson(uid, `${uid}.9`))).toBe(true);
    expect(await exists(path.join(paths.rawSeriesDir(uid, `${uid}.9`), `${uid}.1`))).toBe(true);
  });
});
