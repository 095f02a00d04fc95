/**
 * From last image to research PACS (issue 17): what a research team feels. storescu sends a study to a
 * long-running `fiona start` whose routing rule assigns it to a project whose destination is a dcmtk
 * storescp; timed from storescu's start (first byte) to the last file in that storescp's directory,
 * quiet time subtracted, as a ratio to storescu sending the same files straight to another storescp in
 * the same round (alternating which goes first). The transfer record's stage timings say where FIONA's
 * time went. A new study per round: a study already sent is not sent again.
 * Run: npm run bench:e2e  (builds first; needs Redis, dcmtk)
 *   BENCH_E2E_FILES (default 1000 MR files of ~128 KB in 4 series; 10000: CT, 8 series),
 *   BENCH_E2E_BIG_MB (one instance with this many MB of pixel data instead, e.g. 300; the generator
 *   makes it one large frame, which is as much data per C-STORE as a multi-frame instance),
 *   BENCH_E2E_ROUNDS (default 3).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { StageTimings } from "../../src/transfer/stage-timings.js";
import { generateStudy, type GeneratedStudy } from "../../test/support/generate.js";
import { QUIET_SECONDS, startFiona } from "../lib/fiona.js";
import { median, storescpPeer, timeStorescu } from "../lib/peers.js";

const FILES = Number(process.env.BENCH_E2E_FILES ?? 1000);
const BIG_MB = process.env.BENCH_E2E_BIG_MB ? Number(process.env.BENCH_E2E_BIG_MB) : undefined;
const ROUNDS = Number(process.env.BENCH_E2E_ROUNDS ?? 3);
const root = mkdtempSync(path.join(tmpdir(), "fiona-bench-e2e-"));

const caseLabel = BIG_MB
  ? `one MR instance of ${BIG_MB} MB (one large frame)`
  : FILES >= 10_000
    ? `${FILES} CT files of ~128 KB in 8 series`
    : `${FILES} MR files of ~128 KB in 4 series`;

/** The scanner's PatientID carries the research ID, as the routing rule below expects. */
function study(round: number): GeneratedStudy {
  const outDir = path.join(root, `study-${round}`);
  const seed = `bench-e2e-${round}`;
  const phi = { patientId: `E2E_${String(round).padStart(4, "0")}` };
  if (BIG_MB)
    return generateStudy({
      outDir,
      seed,
      phi,
      modality: "MR",
      fileSize: BIG_MB * 2 ** 20,
      pixelFill: "random",
    });
  const ct = FILES >= 10_000;
  const series = ct ? 8 : 4;
  return generateStudy({
    outDir,
    seed,
    phi,
    modality: ct ? "CT" : "MR",
    series,
    instancesPerSeries: FILES / series,
    fileSize: 128 * 1024,
    pixelFill: "random",
  });
}

// Generated up front so writing them does not compete with any measurement.
const studies = Array.from({ length: ROUNDS }, (_, i) => study(i + 1));
console.error(`generated ${ROUNDS} studies: ${caseLabel}`);

const directDir = path.join(root, "direct");
const researchDir = path.join(root, "research");
const direct = await storescpPeer(directDir);
const research = await storescpPeer(researchDir);
const fiona = await startFiona(path.join(root, "fiona"), {
  secret: "bench-e2e-site-secret-0123456789",
  projects: [
    {
      name: "E2E",
      participantPattern: "^E2E_[0-9]{4}$",
      destination: { aeTitle: research.aet, host: "127.0.0.1", port: research.port },
    },
  ],
  routing: { rules: [{ name: "bench", callingAe: "BENCH", patientId: "E2E_", project: "E2E" }] },
}).catch(async (e: unknown) => {
  await Promise.all([direct.stop(), research.stop()]);
  throw e;
});

/** Files in dir, once the newest has stopped growing (storescp writes each file after receiving it). */
async function waitForFiles(dir: string, n: number): Promise<void> {
  let names: string[] = [];
  for (; ; await sleep(5)) {
    names = readdirSync(dir);
    if (names.length >= n) break;
  }
  const size = () => Math.max(...names.map((f) => statSync(path.join(dir, f)).size));
  if (!BIG_MB) return; // 128 KB files are written in well under the poll interval
  for (let last = -1, now = size(); now !== last; await sleep(20), last = now, now = size());
}

interface TransferView {
  studyInstanceUid: string;
  status: string;
  durationMs?: number;
  updatedAt: string;
  stages?: StageTimings;
}

interface Row {
  directMs: number;
  receiveMs: number;
  e2eMs: number;
  /** Last image received (storescu done) → the transfer run started: quiet time, arrival, routing. */
  toRunMs: number;
  runMs: number;
  stages: StageTimings;
  peakRssMb: number;
}

const emptyDir = (dir: string) => {
  for (const f of readdirSync(dir)) rmSync(path.join(dir, f));
};

const rows: Row[] = [];
try {
  await fiona.waitIdle(); // start-up work done
  for (const [i, s] of studies.entries()) {
    emptyDir(directDir);
    emptyDir(researchDir);
    const timeDirect = () => timeStorescu(s.dir, direct.port, direct.aet);
    const timeFiona = async () => {
      const t0 = Date.now();
      const receiveMs = timeStorescu(s.dir, fiona.port, "FIONA");
      await waitForFiles(researchDir, s.files.length);
      const e2eMs = Date.now() - t0;
      const t = await (async () => {
        for (; ; await sleep(50)) {
          const list = await fiona.api<TransferView[]>("/transfers?limit=1000");
          const found = list.find((x) => x.studyInstanceUid === s.studyInstanceUid && x.status !== "queued");
          if (found) return found;
        }
      })();
      if (t.status !== "done" || !t.stages || t.durationMs === undefined)
        throw new Error(`transfer ${t.status}: ${JSON.stringify(t)}`);
      const runStart = Date.parse(t.updatedAt) - t.durationMs;
      await fiona.waitIdle(); // what the run left (cleanup, REDCap-less hooks) must not overlap the next send
      return {
        receiveMs,
        e2eMs,
        toRunMs: runStart - (t0 + receiveMs),
        runMs: t.durationMs,
        stages: t.stages,
      };
    };
    let directMs: number;
    let f: Awaited<ReturnType<typeof timeFiona>>;
    if (i % 2 === 0) {
      f = await timeFiona();
      directMs = timeDirect();
    } else {
      directMs = timeDirect();
      f = await timeFiona();
    }
    rows.push({ directMs, ...f, peakRssMb: fiona.peakRssMb() });
    console.error(`round ${i + 1}/${ROUNDS} done`);
  }
} finally {
  await fiona.stop();
  await Promise.all([direct.stop(), research.stop()]);
}

const QUIET_MS = QUIET_SECONDS * 1000;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ratio = (r: Row) => (r.e2eMs - QUIET_MS) / r.directMs;
const span = (j: StageTimings["send"]) => `${s(j.spanMs)} (${s(j.sumMs)} busy, longest ${s(j.maxMs)})`;
const line = (label: string, r: Row, x: number) =>
  `| ${label} | ${s(r.directMs)} | ${s(r.receiveMs)} | ${s(r.e2eMs)} | **${x.toFixed(2)}x** | ` +
  `${s(r.toRunMs)} | ${s(r.stages.queueWaitMs)} | ${span(r.stages.deidentify)} | ${span(r.stages.send)} | ` +
  `${s(r.stages.bookkeepingMs)} | ${s(r.runMs)} | ${r.peakRssMb.toFixed(0)} MB |`;
const byRatio = [...rows].sort((a, b) => ratio(a) - ratio(b));
const table = [
  `From last image to research PACS: ${caseLabel}, storescu (1 association, TCP_NODELAY=1) → ` +
    `\`fiona start\` (routing rule, quiet time ${QUIET_SECONDS} s) → storescp; ${ROUNDS} rounds`,
  "",
  "| round | direct storescu → storescp | FIONA receive | first byte → last file at destination | " +
    "(e2e − quiet time) ÷ direct | last image → run started | queue wait | de-identification | send | " +
    "bookkeeping | run | FIONA peak RSS |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r, i) => line(String(i + 1), r, ratio(r))),
  line("median (by ratio)", byRatio[Math.floor(byRatio.length / 2)]!, median(rows.map(ratio))),
].join("\n");
console.log(table);
mkdirSync("bench/results", { recursive: true });
writeFileSync(`bench/results/e2e${BIG_MB ? `-big-${BIG_MB}mb` : `-${FILES}`}.md`, table + "\n");
rmSync(root, { recursive: true, force: true });
