/**
 * Ingest benchmark: 2000 MR files of ~128 KB in 4 series, sent by storescu (TCP_NODELAY=1) to
 * (a) dcmtk storescp writing to disk, (b) Orthanc when installed, (c) FIONA with every role in one
 * process. Reports receive times as ratios to storescp, FIONA's time until every file is ingested and
 * classified, and FIONA's peak RSS; then the same with four parallel associations.
 * Run: npm run bench:ingest  (builds first; needs Redis, dcmtk, optionally Orthanc)
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateStudy } from "../../test/support/generate.js";
import { freePort, waitFor } from "../../test/support/env.js";
import { ORTHANC, startOrthanc, startStorescp } from "../../test/support/peers.js";
import { median, timeParallelStorescu, timeStorescu } from "../lib/peers.js";

interface Peer {
  port: number;
  aet: string;
  stop(): Promise<void>;
}

const storescpPeer = async (dir: string): Promise<Peer> => {
  const s = await startStorescp(dir, ["+xa"], { verbose: false, bitPreserving: false });
  return { port: s.port, aet: "RESEARCH", stop: s.stop };
};
const orthancPeer = async (dir: string): Promise<Peer | undefined> => {
  if (!existsSync(ORTHANC)) return undefined;
  const o = await startOrthanc(dir);
  return { port: o.dicomPort, aet: "RESEARCH", stop: o.stop };
};

const FILES = Number(process.env.BENCH_FILES ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const root = mkdtempSync(path.join(tmpdir(), "fiona-bench-ingest-"));

const study = generateStudy({
  outDir: path.join(root, "study"),
  seed: "bench-ingest",
  modality: "MR",
  series: 4,
  instancesPerSeries: FILES / 4,
  fileSize: 128 * 1024,
  pixelFill: "random",
});
const seriesDirs = study.series.map((s) => path.dirname(s.files[0]!));
console.error(`generated ${study.files.length} files, ${(study.totalBytes / 1e6).toFixed(0)} MB`);

interface FionaRun {
  receiveMs: number;
  ingestedMs: number;
  peakRssMb: number;
}

function seriesFilesIngested(dataDir: string): number {
  const dir = path.join(dataDir, "site", "raw", study.studyInstanceUid);
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith(".json")) continue;
      const j = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as {
        NumFiles?: string;
        ClassifyType?: string[];
      };
      if (j.ClassifyType) n += Number(j.NumFiles ?? 0);
    }
  } catch {
    return 0;
  }
  return n;
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function runFiona(parallel: boolean): Promise<FionaRun> {
  const dataDir = mkdtempSync(path.join(root, "fiona-"));
  const port = await freePort();
  const httpPort = await freePort();
  const child = spawn(process.execPath, ["bin/fiona.js", "start"], {
    env: {
      ...process.env,
      FIONA_DATA_DIR: dataDir,
      FIONA_DICOM_PORT: String(port),
      FIONA_HTTP_PORT: String(httpPort),
      FIONA_REDIS_PREFIX: `bench-${path.basename(dataDir)}`,
      FIONA_QUIET_SECONDS: "1",
      FIONA_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.ok,
      "FIONA ready",
      30_000,
    );
    const t0 = performance.now();
    const receiveMs = parallel
      ? await timeParallelStorescu(seriesDirs, port, "FIONA")
      : timeStorescu(study.dir, port, "FIONA");
    await waitFor(
      () => seriesFilesIngested(dataDir) === FILES || undefined,
      "every file ingested",
      120_000,
      10,
    );
    const ingestedMs = performance.now() - t0;
    return { receiveMs, ingestedMs, peakRssMb: peakRssMb(child.pid!) };
  } finally {
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function timePeer(
  start: (dir: string) => Promise<Peer | undefined>,
  parallel: boolean,
): Promise<number | undefined> {
  const dir = mkdtempSync(path.join(root, "peer-"));
  const peer = await start(dir);
  if (!peer) return undefined;
  try {
    return parallel
      ? await timeParallelStorescu(seriesDirs, peer.port, peer.aet)
      : timeStorescu(study.dir, peer.port, peer.aet);
  } finally {
    await peer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const parallel of [false, true]) {
  const scp: number[] = [];
  const orthanc: number[] = [];
  const fiona: FionaRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    scp.push((await timePeer(storescpPeer, parallel))!);
    const o = await timePeer(orthancPeer, parallel);
    if (o !== undefined) orthanc.push(o);
    fiona.push(await runFiona(parallel));
    console.error(`run ${i + 1}/${RUNS} (${parallel ? "4 associations" : "1 association"}) done`);
  }
  const s = median(scp);
  const f = median(fiona.map((r) => r.receiveMs));
  const ing = median(fiona.map((r) => r.ingestedMs));
  const o = orthanc.length ? median(orthanc) : undefined;
  const rss = Math.max(...fiona.map((r) => r.peakRssMb));
  const label = parallel ? "4 parallel associations" : "1 association";
  rows.push(
    `| ${label} | ${(s / 1000).toFixed(2)} s | ${o === undefined ? "n/a" : `${(o / 1000).toFixed(2)} s`} | ${(f / 1000).toFixed(2)} s | ` +
      `**${(f / s).toFixed(2)}x** | ${(ing / 1000).toFixed(2)} s (**${(ing / s).toFixed(2)}x**) | ` +
      `${o === undefined ? "n/a" : `**${(o / f).toFixed(2)}x**`} | ${rss.toFixed(0)} MB |`,
  );
}

const table = [
  `Ingest benchmark: ${FILES} MR files of ~128 KB (4 series), median of ${RUNS} runs, storescu with TCP_NODELAY=1`,
  "",
  "| case | storescp receive | Orthanc receive | FIONA receive | FIONA / storescp | FIONA all ingested + classified (/ storescp receive) | Orthanc / FIONA (speed-up) | FIONA peak RSS |",
  "|---|---|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(table);
mkdirSync("bench/results", { recursive: true });
writeFileSync("bench/results/ingest.md", table + "\n");
rmSync(root, { recursive: true, force: true });
