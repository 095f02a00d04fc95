/**
 * The free-space floor on a real 40 MB tmpfs: the receiver refuses C-STOREs with Out of Resources
 * before writing anything once free space (less the instance) would drop below it, and fiona status,
 * /metrics and /readyz show it.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { printStatus } from "../../src/cli/inspect.js";
import { configSchema, type FionaConfig } from "../../src/config/schema.js";
import { sendFiles, type StoreDestination } from "../../src/dimse/index.js";
import { createLogger } from "../../src/log.js";
import { startReceiver, type ReceiverHandle } from "../../src/receiver/index.js";
import { runRoles } from "../../src/roles/run.js";
import { cleanup, freePort, REDIS_URL } from "../support/env.js";
import { generateStudy } from "../support/generate.js";
import { freeBytes, mountTmpfs, setFree } from "../support/tmpfs.js";
import { parsePrometheus, sampleValue } from "../metrics/prom-parser.js";
import { captureLogger, listFiles } from "./helpers.js";

const MiB = 1024 * 1024;
const FLOOR = 16 * MiB;
const OUT_OF_RESOURCES = 0xa700;
const SCRAPE_TOKEN = randomBytes(24).toString("hex");
/** The receiver re-reads statfs at most once a second. */
const afterRecheck = () => new Promise((r) => setTimeout(r, 1100));

const tmpfs = mountTmpfs("recv");
if (!tmpfs.mounted) console.warn(`disk-floor tests skipped: cannot mount a tmpfs (${tmpfs.reason})`);

const gen = (seed: string, fileSize: number, instances: number) =>
  generateStudy({
    outDir: fs.mkdtempSync(path.join(os.tmpdir(), "fiona-floor-gen-")),
    seed,
    modality: "MR",
    instancesPerSeries: instances,
    fileSize,
  });

describe.skipIf(!tmpfs.mounted)("free-space floor (40 MB tmpfs)", () => {
  const filler = path.join(tmpfs.dir, "filler");
  const small = gen("floor-small", 2048, 3);
  const big = gen("floor-big", 256 * 1024, 1);
  const huge = gen("floor-huge", 8 * MiB, 1);
  const { logger, lines } = captureLogger();
  let cfg: FionaConfig;
  let rx: ReceiverHandle;
  let dest: StoreDestination;
  const dataFiles = () => listFiles(tmpfs.dir).filter((f) => f !== filler);
  const belowFloorEvents = () => lines.filter((l) => l.event === "disk-below-floor");

  beforeAll(async () => {
    cfg = configSchema.parse({
      dataDir: tmpfs.dir,
      dicomHost: "127.0.0.1",
      httpHost: "127.0.0.1",
      httpPort: await freePort(),
      redis: { url: REDIS_URL, prefix: `test-${randomBytes(4).toString("hex")}`, startLocal: false },
      disk: { minFreeBytes: FLOOR, minFreePercent: 0 },
      web: { metricsToken: SCRAPE_TOKEN },
      log: { level: "silent" },
    });
    rx = await startReceiver(cfg, { port: 0, log: logger });
    dest = { host: "127.0.0.1", port: rx.port, calledAe: "FIONA", callingAe: "FLOORTEST", timeoutMs: 10_000 };
  });

  afterAll(async () => {
    await rx?.close();
    tmpfs.unmount();
    if (cfg) await cleanup(cfg);
    for (const s of [small, big, huge]) fs.rmSync(s.dir, { recursive: true, force: true });
  });

  it("stores while free space is above the floor", async () => {
    const report = await sendFiles(dest, small.files.slice(0, 1));
    expect(report.succeeded).toBe(1);
    expect(dataFiles().filter((f) => f.includes("/archive/scp_"))).toHaveLength(1);
  });

  it("below the floor answers Out of Resources before writing anything, with one log event", async () => {
    setFree(filler, FLOOR - MiB);
    await afterRecheck();
    const before = { files: dataFiles(), free: freeBytes(tmpfs.dir) };
    const report = await sendFiles(dest, [...small.files.slice(1), ...big.files]);
    expect(report.files.map((f) => f.outcome.status)).toEqual([
      OUT_OF_RESOURCES,
      OUT_OF_RESOURCES,
      OUT_OF_RESOURCES,
    ]);
    // Not a byte: no archive file, no temporary file, no quarantine, the same free pages.
    expect(dataFiles()).toEqual(before.files);
    expect(freeBytes(tmpfs.dir)).toBe(before.free);
    expect(rx.stats().instancesFailed).toBe(3);
    const events = belowFloorEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ level: 40, floorBytes: FLOOR });
    expect(events[0]!.freeBytes).toBeLessThan(FLOOR);
    // A flood of refusals is not a flood of log lines.
    expect(lines.filter((l) => l.event === "store-failed")).toHaveLength(0);
  });

  it("counts the instance about to be written: a big one is refused where a small one fits", async () => {
    setFree(filler, FLOOR + 64 * 1024);
    await afterRecheck();
    const bigBytes = fs.statSync(big.files[0]!).size;
    const smallBytes = fs.statSync(small.files[1]!).size;
    expect(bigBytes).toBeGreaterThan(64 * 1024);
    expect(smallBytes).toBeLessThan(32 * 1024);
    const refused = await sendFiles(dest, big.files);
    expect(refused.files[0]!.outcome.status).toBe(OUT_OF_RESOURCES);
    const stored = await sendFiles(dest, small.files.slice(1, 2));
    expect(stored.files[0]!.outcome.status).toBe(0);
    expect(dataFiles().filter((f) => f.includes("/archive/scp_"))).toHaveLength(2);
    // Still within the 10 s of the first event: folded into it.
    expect(belowFloorEvents()).toHaveLength(1);
  });

  it("a large dataset spilled to disk while it arrives is refused once it reaches the floor", async () => {
    const spilling = await startReceiver(cfg, { port: 0, log: logger, spillThreshold: 256 * 1024 });
    try {
      setFree(filler, FLOOR + 2 * MiB);
      await afterRecheck();
      const before = { files: dataFiles(), free: freeBytes(tmpfs.dir) };
      const report = await sendFiles({ ...dest, port: spilling.port }, huge.files);
      expect(report.files[0]!.outcome.status).toBe(OUT_OF_RESOURCES);
      // The part already spilled is gone again.
      expect(dataFiles()).toEqual(before.files);
      expect(freeBytes(tmpfs.dir)).toBe(before.free);
    } finally {
      await spilling.close();
    }
  });

  it("fiona status, /metrics and /readyz show the floor, and readiness fails below it", async () => {
    setFree(filler, FLOOR - 2 * MiB);
    const running = await runRoles(cfg, { web: true }, createLogger("silent"));
    const base = `http://127.0.0.1:${cfg.httpPort}`;
    const scrape = async () =>
      parsePrometheus(
        await (
          await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}` } })
        ).text(),
      );
    try {
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { checks: Record<string, { ok: boolean; detail?: unknown }> };
      expect(body.checks.disk).toEqual({
        ok: false,
        detail: { freeBytes: freeBytes(tmpfs.dir), floorBytes: FLOOR },
      });

      const fams = await scrape();
      expect(sampleValue(fams, "fiona_disk_floor_bytes")).toBe(FLOOR);
      expect(sampleValue(fams, "fiona_disk_free_bytes")).toBe(freeBytes(tmpfs.dir));
      expect(sampleValue(fams, "fiona_receiver_below_floor")).toBe(1);

      const out = vi.spyOn(console, "log").mockImplementation(() => {});
      try {
        await printStatus(cfg, false);
        const text = out.mock.calls.map((c) => String(c[0])).join("\n");
        expect(text).toMatch(/disk: .*, 14 MiB free, floor 16 MiB .*BELOW THE FLOOR/);
        out.mockClear();
        await printStatus(cfg, true);
        const json = JSON.parse(String(out.mock.calls[0]![0])) as { disk: Record<string, unknown> };
        expect(json.disk).toMatchObject({ floorBytes: FLOOR, belowFloor: true, path: tmpfs.dir });
      } finally {
        out.mockRestore();
      }

      setFree(filler, FLOOR + 4 * MiB);
      const again = (await (await fetch(`${base}/readyz`)).json()) as typeof body;
      expect(again.checks.disk!.ok).toBe(true);
      const after = await scrape();
      expect(sampleValue(after, "fiona_receiver_below_floor")).toBe(0);
    } finally {
      await running.close();
    }
  });
});
