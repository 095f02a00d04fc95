import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepOrphans, type OrphanSweepResult } from "../../src/cleanup/orphans.js";
import type { FionaConfig } from "../../src/config/schema.js";
import { THIS_WRITER, processStart, tempName } from "../../src/fs/temp-name.js";
import { createLogger } from "../../src/log.js";
import { SitePaths } from "../../src/paths.js";
import { uploadStore } from "../../src/wsi/uploads.js";
import { cleanup, freePort, testConfig, waitFor } from "../support/env.js";
import { generateStudy } from "../support/generate.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const log = createLogger("silent");
let cfg: FionaConfig;
let paths: SitePaths;
let redis: Redis;
const children: ChildProcess[] = [];

/** A temporary name as another process (`pid`, started at `start`, on `host`) writes it. */
const nameOf = (base: string, w: { host?: string; pid: number; start: string }) =>
  `.${base}.${w.host ?? THIS_WRITER.host}-${w.pid}-${w.start}-0a1b2c.tmp`;

function write(file: string, bytes = 100): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.alloc(bytes, 7));
  return file;
}

const sweep = async (c = cfg) => (await sweepOrphans({ cfg: c, paths, redis, log })) as OrphanSweepResult;

/** A process that has exited: its pid runs nothing (or, reused, something started later). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  return r.pid!;
}

beforeAll(() => {
  cfg = testConfig({ schedules: { orphans: { graceMinutes: 10 } } });
  paths = new SitePaths(cfg.dataDir);
  redis = new Redis(cfg.redis.url);
});

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  redis.disconnect();
  await cleanup(cfg);
});

describe("orphan sweep", () => {
  it("removes a dead writer's temporary files in one sweep and keeps a live writer's", async () => {
    const study = path.join(paths.raw, "1.2.3.4");
    // A writer that hangs mid-write: its series JSON's temporary file exists, 0 bytes so far.
    fs.mkdirSync(study, { recursive: true });
    const live = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `
        import fs from "node:fs";
        import { tempName } from ${JSON.stringify(path.join(ROOT, "src/fs/temp-name.ts"))};
        fs.writeFileSync(${JSON.stringify(study)} + "/" + tempName("1.2.3.4.6.json"), "");
        console.log("writing");
        setInterval(() => {}, 1000);`,
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(live);
    await new Promise((resolve) => live.stdout!.once("data", resolve));
    const liveJson = path.join(
      study,
      fs.readdirSync(study).find((n) => n.includes("1.2.3.4.6.json"))!,
    );
    const liveStart = processStart(live.pid!)!;
    const dead = { pid: deadPid(), start: "1" };
    const series = path.join(paths.outbox, "0123abcd", "1.2.3.4.5");
    const old = new Date(Date.now() - 3600_000);

    const deadJson = write(path.join(study, nameOf("1.2.3.4.5.json", dead)), 0); // the 0-byte series JSON
    const deadSpill = write(path.join(paths.archive, ".tmp", nameOf("instance", dead)), 36_700);
    const deadDeid = write(path.join(series, nameOf("9.8.7.dcm", dead)));
    const deadExport = path.join(cfg.dataDir, "exports", ".tmp", nameOf("0123456789abcdef01234567", dead));
    write(path.join(deadExport, "deid", "x.dcm"));
    expect(liveJson).toContain(`-${live.pid}-${liveStart}-`);
    // The live pid, but a process started at another time: a reused pid, its writer is gone.
    const reused = write(path.join(study, nameOf("1.2.3.4.7.json", { pid: live.pid!, start: "zz" })));
    const otherHost = write(path.join(study, nameOf("a.json", { host: "elsewhere", pid: 1, start: "1" })));
    const unnamed = write(path.join(study, ".1.2.3.4.8.json.0a1b2c3d4e5f.tmp"));
    const mine = write(path.join(study, tempName("1.2.3.4.9.json")));
    const data = [write(path.join(study, "1.2.3.4.5.json")), write(path.join(series, "9.8.7.dcm"))];

    const r = await sweep(cfg);
    expect(r).toMatchObject({ full: true, removed: 5, kept: 4 });
    expect(r.bytes).toBe(36_700 + 100 * 3);
    for (const gone of [deadJson, deadSpill, deadDeid, deadExport, reused])
      expect(fs.existsSync(gone), gone).toBe(false);
    for (const kept of [liveJson, otherHost, unnamed, mine, ...data])
      expect(fs.existsSync(kept), kept).toBe(true);
    expect(fs.existsSync(path.join(cfg.dataDir, "exports", ".tmp"))).toBe(true);

    // Its writer exits: the next sweep removes the file, though its folder did not change since.
    live.kill("SIGKILL");
    await waitFor(() => live.exitCode !== null || live.signalCode !== null, "the writer to exit");
    fs.utimesSync(study, old, old);
    expect(await sweep(cfg)).toMatchObject({ full: false, removed: 1, kept: 3 });
    expect(fs.existsSync(liveJson)).toBe(false);

    // Another host's file, and one without a writer in its name, go once unchanged for the grace period.
    const noGrace = {
      ...cfg,
      schedules: { ...cfg.schedules, orphans: { ...cfg.schedules.orphans, graceMinutes: 0 } },
    };
    expect(await sweep(noGrace)).toMatchObject({ removed: 2, kept: 1 });
    expect([otherHost, unnamed, mine].map((f) => fs.existsSync(f))).toEqual([false, false, true]);
    expect(data.every((f) => fs.existsSync(f))).toBe(true);
  });

  it("fails a slide upload that has not grown for wsi.incompleteUploadHours and removes its part", async () => {
    const store = uploadStore(cfg);
    const rec = await store.create({
      project: "P",
      participant: "P_0001",
      metadata: {},
      extension: ".svs",
      size: 1000,
    });
    write(store.partPath(rec.id), 400);
    expect((await sweep()).staleUploads).toBe(0);
    const past = new Date(Date.now() - (cfg.wsi.incompleteUploadHours + 1) * 3600_000);
    fs.utimesSync(store.partPath(rec.id), past, past);
    expect((await sweep()).staleUploads).toBe(1);
    expect(fs.existsSync(store.partPath(rec.id))).toBe(false);
    expect(await store.get(rec.id)).toMatchObject({
      state: "failed",
      error: expect.stringMatching(/abandoned/),
    });
  });
});

describe("a receiver killed mid-receive", () => {
  const gen = fs.mkdtempSync(path.join(tmpdir(), "fiona-orphans-gen-"));
  afterAll(() => fs.rmSync(gen, { recursive: true, force: true }));

  async function startReceiver(configFile: string, port: number): Promise<ChildProcess> {
    const stderr = path.join(cfg.dataDir, "receiver.stderr");
    const child = spawn(process.execPath, ["bin/fiona.js", "--config", configFile, "receiver"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", fs.openSync(stderr, "a")],
    });
    children.push(child);
    const listening = () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => resolve(!!s.end()));
        s.on("error", () => resolve(false));
      });
    await waitFor(listening, "the receiver to listen", 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; its stderr: ${fs.readFileSync(stderr, "utf8")}`);
    });
    return child;
  }

  it("leaves no partial file once restarted", async () => {
    const port = await freePort();
    const rxCfg = { ...cfg, dicomPort: port, log: { level: "warn" } };
    const configFile = path.join(cfg.dataDir, "receiver.config.json");
    fs.writeFileSync(configFile, JSON.stringify(rxCfg));
    // Above the receiver's 32 MiB spill threshold: it goes to archive/.tmp while it arrives.
    const study = generateStudy({
      outDir: gen,
      seed: "orphans-big",
      fileSize: 64 * 1024 * 1024,
      pixelFill: "random",
    });
    const total = fs.statSync(study.files[0]!).size;
    const tmp = path.join(paths.archive, ".tmp");

    const rx = await startReceiver(configFile, port);
    const scu = spawn("storescu", ["-aec", "FIONA", "127.0.0.1", String(port), study.files[0]!], {
      stdio: "ignore",
    });
    children.push(scu);
    // Kill as soon as the partial file holds some megabytes (a busy wait: the transfer is fast).
    const deadline = Date.now() + 20_000;
    let partial: string | undefined;
    while (Date.now() < deadline && partial === undefined) {
      for (const name of fs.existsSync(tmp) ? fs.readdirSync(tmp) : []) {
        const size = fs.statSync(path.join(tmp, name), { throwIfNoEntry: false })?.size ?? 0;
        if (size > 4 * 1024 * 1024) partial = path.join(tmp, name);
      }
    }
    rx.kill("SIGKILL");
    expect(partial, "a partial file in archive/.tmp").toBeDefined();
    await waitFor(() => rx.signalCode === "SIGKILL", "the receiver to die");
    const left = fs.statSync(partial!).size;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(total);
    expect(fs.readdirSync(paths.archive).filter((n) => n.startsWith("scp_"))).toEqual([]);

    const again = await startReceiver(configFile, port);
    expect(fs.readdirSync(tmp)).toEqual([]);
    again.kill("SIGKILL");
  });
});
