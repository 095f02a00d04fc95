/**
 * De-identification benchmark: 2000 MR files of ~128 KB in 4 series (private tags, nested sequences,
 * random pixel fill), page cache warm. Measures, as files/s:
 * - the I/O floor: fs.copyFileSync in a loop, and `cp -r` of the study folder;
 * - the engine alone on buffers already in memory (no file I/O), one thread;
 * - deidentifyFiles (read, de-identify, write every file) on the main thread;
 * - DeidPool with 2 worker threads (the pipeline's real path: the headline number);
 * - Orthanc's synchronous `POST /studies/{id}/anonymize` of the same study, when Orthanc is installed
 *   (the files are uploaded with storescu first, untimed; timed until the anonymized study exists).
 * One untimed warm-up round, then the median of `--rounds` rounds with the variants alternating.
 * Outputs are deleted between runs, outside the timed part. Prints a markdown table and writes
 * bench/results/deid.md.
 *
 *   npm run build && npx tsx bench/deid/run.ts [--files 2000] [--rounds 3]
 *
 * The pool runs the compiled dist/transfer/deid-worker.js, so build first.
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { deidentify, type DeidContext } from "../../src/deid/index.js";
import { createLogger } from "../../src/log.js";
import { DeidPool } from "../../src/transfer/deid-pool.js";
import { deidentifyFiles, type DeidFilesResult } from "../../src/transfer/deid-files.js";
import { generateStudy } from "../../test/support/generate.js";
import { ORTHANC, startOrthanc, type Orthanc } from "../../test/support/peers.js";
import { median, timeStorescu } from "../lib/peers.js";

const { values: args } = parseArgs({
  options: { files: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } },
});
const FILES = Number(args.files);
const ROUNDS = Number(args.rounds);
const THREADS = 2;

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const resultsDir = path.join(root, "bench/results");
if (!existsSync(path.join(root, "dist/transfer/deid-worker.js")))
  throw new Error("dist/ not built: npm run build");

const ctx: DeidContext = {
  project: { name: "BENCH", privateTags: "remove" },
  participant: "BENCH_0001",
  event: "baseline",
  secret: "bench-secret-bench-secret-bench-secret",
};

/** Share of the last minute some task waited for a CPU (Linux PSI), as " (52%)"; "" when unavailable. */
function cpuPressure(): string {
  const m = existsSync("/proc/pressure/cpu")
    ? /avg60=([\d.]+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"))
    : null;
  return m ? ` (${Number(m[1]).toFixed(0)}%)` : "";
}

interface Variant {
  name: string;
  /** Does the work into an empty outDir; returns the number of files it produced. */
  run(outDir: string): Promise<number>;
  /** Untimed cleanup after a run (outDir is removed anyway). */
  after?(): Promise<void>;
}

const expectWritten = (r: DeidFilesResult): number => {
  if (r.refused.length || Object.keys(r.dropped).length)
    throw new Error(`refused/dropped: ${JSON.stringify(r)}`);
  return r.written;
};

async function orthancJson<T>(o: Orthanc, method: string, uri: string, body?: unknown): Promise<T> {
  const res = await fetch(`${o.url}${uri}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`Orthanc ${method} ${uri}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const instanceCount = async (o: Orthanc, studyId: string): Promise<number> =>
  Number(
    (await orthancJson<{ CountInstances: number }>(o, "GET", `/studies/${studyId}/statistics`))
      .CountInstances,
  );

/** Starts Orthanc and uploads the study (untimed); the variant times the synchronous anonymize call. */
async function orthancVariant(
  work: string,
  studyDir: string,
): Promise<{ variant: Variant; stop(): Promise<void> }> {
  const orthanc = await startOrthanc(path.join(work, "orthanc"));
  let studyId: string | undefined;
  try {
    timeStorescu(studyDir, orthanc.dicomPort, "RESEARCH");
    const [id, ...others] = await orthancJson<string[]>(orthanc, "GET", "/studies");
    const uploaded = id ? await instanceCount(orthanc, id) : 0;
    if (others.length || uploaded !== FILES)
      throw new Error(`Orthanc holds ${uploaded} instances, expected ${FILES}`);
    studyId = id;
  } catch (e) {
    await orthanc.stop();
    throw e;
  }
  let anonymized: string | undefined;
  const variant: Variant = {
    name: "Orthanc 1.10 /studies/{id}/anonymize",
    run: async () => {
      const r = await orthancJson<{ ID: string }>(orthanc, "POST", `/studies/${studyId}/anonymize`, {
        KeepPrivateTags: false,
        Synchronous: true,
      });
      anonymized = r.ID;
      return instanceCount(orthanc, r.ID);
    },
    after: async () => {
      if (anonymized) await orthancJson(orthanc, "DELETE", `/studies/${anonymized}`);
      anonymized = undefined;
    },
  };
  return { variant, stop: orthanc.stop };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), "fiona-bench-deid-"));
  const pool = new DeidPool(createLogger("warn", "bench"), THREADS);
  let stopOrthanc: (() => Promise<void>) | undefined;
  try {
    const study = generateStudy({
      outDir: path.join(work, "in"),
      seed: "bench-deid",
      modality: "MR",
      series: 4,
      instancesPerSeries: FILES / 4,
      fileSize: 128 * 1024,
      pixelFill: "random",
    });
    const files = study.files;
    const mb = study.totalBytes / 1e6;
    const inputs = files.map((f) => readFileSync(f)); // also warms the page cache
    console.error(`generated ${files.length} files, ${((mb / files.length) * 1000).toFixed(0)} KB each`);

    const copyLoop: Variant = {
      name: "fs.copyFileSync loop (I/O floor)",
      run: async (out) => {
        for (const f of files)
          copyFileSync(f, path.join(out, `${path.basename(path.dirname(f))}-${path.basename(f)}`));
        return files.length;
      },
    };
    const cpR: Variant = {
      name: "`cp -r` (I/O floor)",
      run: async (out) => {
        const r = spawnSync("cp", ["-r", study.dir, path.join(out, "study")]);
        if (r.status !== 0) throw new Error(`cp failed: ${r.stderr.toString()}`);
        return files.length;
      },
    };
    const pooled: Variant = {
      name: `**DeidPool, ${THREADS} threads (pipeline path)**`,
      run: async (outDir) => expectWritten(await pool.run({ files, outDir, ctx })),
    };
    const variants: Variant[] = [
      copyLoop,
      cpR,
      {
        name: "engine on buffers in memory, 1 thread (no I/O)",
        run: async () => {
          let n = 0;
          for (const b of inputs) if (deidentify(b, ctx).dropped === undefined) n++;
          return n;
        },
      },
      {
        name: "deidentifyFiles, 1 thread (read + de-identify + write)",
        run: async (outDir) => expectWritten(deidentifyFiles({ files, outDir, ctx })),
      },
      pooled,
    ];
    let orthancV: Variant | undefined;
    if (existsSync(ORTHANC)) {
      const o = await orthancVariant(work, study.dir);
      variants.push((orthancV = o.variant));
      stopOrthanc = o.stop;
    }

    const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    const load: string[] = [];
    for (let round = 0; round <= ROUNDS; round++) {
      for (const v of variants) {
        const out = path.join(work, "out");
        mkdirSync(out);
        const t0 = performance.now();
        const n = await v.run(out);
        const s = (performance.now() - t0) / 1000;
        if (n !== files.length) throw new Error(`${v.name}: ${n} files, expected ${files.length}`);
        rmSync(out, { recursive: true, force: true });
        await v.after?.();
        if (round > 0) times.get(v)!.push(s);
        console.error(`${round === 0 ? "warm-up" : `round ${round}`}: ${v.name}: ${s.toFixed(3)} s`);
      }
      load.push(`${loadavg()[0]!.toFixed(2)}${cpuPressure()}`);
    }

    const rate = (v: Variant | undefined) => (v ? files.length / median(times.get(v)!) : undefined);
    const poolRate = rate(pooled)!;
    const rows = variants.map((v) => {
      const t = times.get(v)!;
      const m = median(t);
      return `| ${v.name} | ${m.toFixed(3)} | ${t.map((x) => x.toFixed(3)).join(", ")} | ${(files.length / m).toFixed(0)} | ${(mb / m).toFixed(0)} |`;
    });
    const o = rate(orthancV);
    const text = [
      `## De-identification: ${files.length} MR files of ${((mb / files.length) * 1000).toFixed(0)} KB in 4 series`,
      "",
      `${new Date().toISOString()}; Node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}); project { name: "BENCH", privateTags: "remove" }; ` +
        `page cache warm; median of ${ROUNDS} alternating rounds after a warm-up round; files on ${tmpdir()}.`,
      "",
      "| Variant | Median (s) | Runs (s) | Files/s | MB/s |",
      "|---|---|---|---|---|",
      ...rows,
      "",
      `- DeidPool (${THREADS} threads) / Orthanc: ${o === undefined ? "n/a (Orthanc not installed)" : `**${(poolRate / o).toFixed(1)}x**`} (target >= 5x)`,
      `- DeidPool (${THREADS} threads) / copyFileSync loop: ${(poolRate / rate(copyLoop)!).toFixed(2)}x; / cp -r: ${(poolRate / rate(cpR)!).toFixed(2)}x`,
      `- Headline: ${poolRate.toFixed(0)} files/s (target >= 1500)`,
      `- 1-minute load average (CPU pressure "some" avg60) after each round, warm-up first: ${load.join(", ")}`,
      "",
    ].join("\n");
    console.log(text);
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, "deid.md"), text);
    console.error(`written to ${path.relative(process.cwd(), path.join(resultsDir, "deid.md"))}`);
  } finally {
    await pool.close();
    await stopOrthanc?.();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
