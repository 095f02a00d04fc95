/**
 * Ingest benchmark as a site runs FIONA: ONE `fiona start` process (every role in one process), never
 * restarted, receives several new studies in a row (default 3 of 1000 MR files of ~128 KB, 4 series),
 * so Redis, the registry and raw/ grow from study to study. Each study is also sent to one long-running
 * dcmtk storescp writing files, alternating which receiver goes first, so noise hits both.
 * Per study: FIONA receive ÷ storescp receive, FIONA all ingested + classified ÷ storescp receive
 * (from storescu's start), FIONA peak RSS. storescu: one association, TCP_NODELAY=1.
 * Run: npm run bench:ingest-long  (builds first; needs Redis, dcmtk; BENCH_STUDIES, BENCH_FILES)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateStudy } from "../../test/support/generate.js";
import { QUIET_SECONDS, startFiona } from "../lib/fiona.js";
import { median, storescpPeer, timeStorescu } from "../lib/peers.js";

const STUDIES = Number(process.env.BENCH_STUDIES ?? 3);
const FILES = Number(process.env.BENCH_FILES ?? 1000);
const TARGET = { receive: 1.25, ingested: 2 };
const root = mkdtempSync(path.join(tmpdir(), "fiona-bench-ingest-long-"));

// Generated up front so writing them does not compete with any measurement.
const studies = Array.from({ length: STUDIES }, (_, i) =>
  generateStudy({
    outDir: path.join(root, `study-${i + 1}`),
    seed: `bench-ingest-long-${i + 1}`,
    modality: "MR",
    series: 4,
    instancesPerSeries: FILES / 4,
    fileSize: 128 * 1024,
    pixelFill: "random",
  }),
);
console.error(`generated ${STUDIES} studies of ${studies[0]!.files.length} files`);

const scp = await storescpPeer(path.join(root, "storescp"));
const fiona = await startFiona(path.join(root, "fiona")).catch(async (e: unknown) => {
  await scp.stop();
  throw e;
});
interface Row {
  scpMs: number;
  receiveMs: number;
  ingestedMs: number;
  settleMs: number;
  peakRssMb: number;
}
const rows: Row[] = [];
try {
  await fiona.waitIdle(); // start-up work done
  for (const [i, study] of studies.entries()) {
    const timeScp = () => timeStorescu(study.dir, scp.port, scp.aet);
    const timeFiona = async () => {
      const t0 = performance.now();
      const receiveMs = timeStorescu(study.dir, fiona.port, "FIONA");
      await fiona.waitIngested(study.studyInstanceUid, study.files.length);
      const ingestedMs = performance.now() - t0;
      // FIONA's work after "ingested" (arrival after the quiet time, what arrival triggers) must not
      // overlap the next send; the time it takes is reported.
      await fiona.waitArrived(study.studyInstanceUid);
      await fiona.waitIdle();
      return { receiveMs, ingestedMs, settleMs: performance.now() - t0 - ingestedMs };
    };
    let scpMs: number;
    let f: Awaited<ReturnType<typeof timeFiona>>;
    if (i % 2 === 0) {
      f = await timeFiona();
      scpMs = timeScp();
    } else {
      scpMs = timeScp();
      f = await timeFiona();
    }
    rows.push({ scpMs, ...f, peakRssMb: fiona.peakRssMb() });
    console.error(`study ${i + 1}/${STUDIES} done`);
  }
} finally {
  await fiona.stop();
  await scp.stop();
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const x = (ratio: number, target: number) =>
  `**${ratio.toFixed(2)}x** (${ratio <= target ? "met" : "not met"})`;
const line = (label: string, r: Row, receive: number, ingested: number) =>
  `| ${label} | ${s(r.scpMs)} | ${s(r.receiveMs)} | ${x(receive, TARGET.receive)} | ${s(r.ingestedMs)} | ` +
  `${x(ingested, TARGET.ingested)} | ${s(r.settleMs)} | ${r.peakRssMb.toFixed(0)} MB |`;
const med = (f: (r: Row) => number) => median(rows.map(f));
const medianRow: Row = {
  scpMs: med((r) => r.scpMs),
  receiveMs: med((r) => r.receiveMs),
  ingestedMs: med((r) => r.ingestedMs),
  settleMs: med((r) => r.settleMs),
  peakRssMb: rows.at(-1)!.peakRssMb, // VmHWM only grows
};
const table = [
  `Ingest, long-running FIONA: ${STUDIES} new studies in a row of ${FILES} MR files of ~128 KB (4 series) into one ` +
    "`fiona start` process, never restarted; storescu, 1 association, TCP_NODELAY=1",
  "",
  `| study | storescp receive | FIONA receive | FIONA ÷ storescp (target ≤ ${TARGET.receive}x) | FIONA all ingested + classified | ` +
    `÷ storescp receive (target ≤ ${TARGET.ingested}x) | FIONA ingested → arrived (${QUIET_SECONDS} s quiet time) and idle | FIONA peak RSS so far |`,
  "|---|---|---|---|---|---|---|---|",
  ...rows.map((r, i) => line(String(i + 1), r, r.receiveMs / r.scpMs, r.ingestedMs / r.scpMs)),
  // Ratios per study (each pair ran back to back), then their median.
  line(
    "median",
    medianRow,
    med((r) => r.receiveMs / r.scpMs),
    med((r) => r.ingestedMs / r.scpMs),
  ),
].join("\n");
console.log(table);
mkdirSync("bench/results", { recursive: true });
writeFileSync("bench/results/ingest-long.md", table + "\n");
rmSync(root, { recursive: true, force: true });
