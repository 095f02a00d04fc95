/**
 * Ingest benchmark: 2000 MR files of ~128 KB in 4 series, sent by storescu (TCP_NODELAY=1) to
 * (a) dcmtk storescp writing to disk, (b) Orthanc when installed, (c) FIONA with every role in one
 * process. Reports receive times as ratios to storescp, FIONA's time until every file is ingested and
 * classified, and FIONA's peak RSS; then the same with four parallel associations.
 * Run: npm run bench:ingest  (builds first; needs Redis, dcmtk, optionally Orthanc)
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateStudy } from "../../test/support/generate.js";
import { ORTHANC, startOrthanc } from "../../test/support/peers.js";
import { startFiona } from "../lib/fiona.js";
import { median, storescpPeer, timeParallelStorescu, timeStorescu, type Peer } from "../lib/peers.js";

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

async function runFiona(parallel: boolean): Promise<FionaRun> {
  const dataDir = mkdtempSync(path.join(root, "fiona-"));
  const fiona = await startFiona(dataDir);
  try {
    const t0 = performance.now();
    const receiveMs = parallel
      ? await timeParallelStorescu(seriesDirs, fiona.port, "FIONA")
      : timeStorescu(study.dir, fiona.port, "FIONA");
    await fiona.waitIngested(study.studyInstanceUid, FILES);
    return { receiveMs, ingestedMs: performance.now() - t0, peakRssMb: fiona.peakRssMb() };
  } finally {
    await fiona.stop();
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
