/**
 * Whole-slide conversion benchmark: convertSlide (src/wsi, tile pass-through, one instance per level)
 * vs OrthancWSIDicomizer 1.1 (Debian orthanc-wsi, default transcoding without re-encoding,
 * `--max-size 0` for one instance per level, same 256 tiles) on the same generated pyramidal JPEG TIFF.
 *
 *   npx tsx bench/wsi/run.ts [--sizes 40000,20000] [--rounds 2] [--cache <dir>]
 *
 * The slides are cached (default <tmp>/fiona-bench-wsi): a 4000x4000 tissue-like texture (Worley cells,
 * purple/pink, light noise) replicated to size and saved with `vips tiffsave --tile --pyramid
 * --compression jpeg --Q 80`. Both converters run as child processes under /usr/bin/time -v (wall time,
 * peak RSS); ours is `node` importing dist/ (npm run build first), the way a worker runs it. Every
 * output folder is removed between runs, outside the timed part. Prints a markdown table and writes
 * bench/results/wsi.md.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { median } from "../lib/peers.js";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "40000,20000" },
    rounds: { type: "string", default: "2" },
    cache: { type: "string", default: path.join(tmpdir(), "fiona-bench-wsi") },
  },
});
const SIZES = args.sizes.split(",").map(Number);
const ROUNDS = Number(args.rounds);
const CACHE = args.cache;

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..", "..");
const resultsDir = path.join(here, "..", "results");
const TILE = 256;
const PATTERN = 4000;

function run(cmd: string, argv: string[]): string {
  const r = spawnSync(cmd, argv, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${argv.join(" ")} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return `${r.stdout}${r.stderr}`;
}

/** The cached slide of size x size pixels (generated once). */
function slide(size: number): string {
  if (size % PATTERN !== 0) throw new Error(`--sizes must be multiples of ${PATTERN}`);
  const file = path.join(CACHE, `slide-${size}.tif`);
  if (existsSync(file)) return file;
  mkdirSync(CACHE, { recursive: true });
  const p = (n: string) => path.join(CACHE, `${n}.v`);
  const dim = String(PATTERN);
  console.error(`generating ${file}`);
  run("vips", ["worley", p("cells"), dim, dim, "--cell-size", "64"]);
  run("vips", ["linear", p("cells"), p("tinted"), "2.2 4.0 2.0", "5 20 10", "--uchar"]);
  run("vips", ["invert", p("tinted"), p("stain")]);
  run("vips", ["gaussnoise", p("noise"), dim, dim, "--sigma", "6", "--mean", "0"]);
  run("vips", ["add", p("stain"), p("noise"), p("textured")]);
  run("vips", ["cast", p("textured"), p("pattern"), "uchar"]);
  // replicate streams straight into tiffsave: the full-size image never exists uncompressed on disk.
  const n = String(size / PATTERN);
  const tmp = path.join(CACHE, `slide-${size}.tmp.tif`);
  run("vips", [
    "replicate",
    p("pattern"),
    `${tmp}[tile,pyramid,compression=jpeg,Q=80,tile-width=${TILE},tile-height=${TILE}]`,
    n,
    n,
  ]);
  for (const n of ["cells", "tinted", "stain", "noise", "textured", "pattern"]) rmSync(p(n), { force: true });
  run("mv", [tmp, file]);
  return file;
}

interface Measured {
  seconds: number;
  rssMb: number;
  files: number;
  outMb: number;
}

/** Run a command under /usr/bin/time -v; wall time and peak RSS of the process tree's largest member. */
function timed(cmd: string, argv: string[], out: string): Measured {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const text = run("/usr/bin/time", ["-v", cmd, ...argv]);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(text);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  if (!wall || !rss) throw new Error(`no /usr/bin/time output from ${cmd}`);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const files = readdirSync(out).filter((n) => n.endsWith(".dcm"));
  const outMb = files.reduce((s, n) => s + statSync(path.join(out, n)).size, 0) / 1e6;
  return { seconds, rssMb: Number(rss[1]) / 1024, files: files.length, outMb };
}

const OURS_SCRIPT = `
import { convertSlide } from ${JSON.stringify(path.join(root, "dist/wsi/convert.js"))};
const [input, out] = process.argv.slice(2);
await convertSlide(input, out, {
  patientName: "BENCH^1", patientId: "BENCH_1", studyInstanceUid: "2.25.1", seriesInstanceUid: "2.25.2",
  studyId: "1", studyDate: "20260101", studyTime: "120000", containerIdentifier: "SLIDE_1",
  specimenIdentifier: "SPECIMEN_1", specimenUid: "2.25.3",
});`;

/** Ours as a plain node process (the script lives in the cache folder: tsx's loader must not be involved). */
function ours(input: string, out: string): Measured {
  const script = path.join(CACHE, "convert-one.mjs");
  writeFileSync(script, OURS_SCRIPT);
  return timed("node", [script, input, out], out);
}
const orthanc = (input: string, out: string, threads: number) =>
  timed(
    "OrthancWSIDicomizer",
    [
      input,
      "--folder",
      out,
      "--max-size",
      "0",
      "--tile-width",
      String(TILE),
      "--tile-height",
      String(TILE),
      "--threads",
      String(threads),
    ],
    out,
  );

/** dciodvfy error count on the smallest output file (the large ones take minutes to check). */
function dciodvfyErrors(out: string): number {
  const files = readdirSync(out)
    .filter((n) => n.endsWith(".dcm"))
    .map((n) => path.join(out, n))
    .sort((a, b) => statSync(a).size - statSync(b).size);
  const r = spawnSync("dciodvfy", ["-new", files[0]!], { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.startsWith("Error")).length;
}

function main(): void {
  if (!existsSync(path.join(root, "dist/wsi/convert.js"))) throw new Error("run npm run build first");
  const rows: string[] = [];
  const work = path.join(CACHE, "out");
  try {
    for (const size of SIZES) {
      const input = slide(size);
      const inputMb = statSync(input).size / 1e6;
      const runs: Record<string, Measured[]> = { ours: [], ow1: [], ow2: [] };
      let errors = { ours: 0, ow: 0 };
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate the order each round so neither side always gets the warmer page cache.
        const order = r % 2 === 0 ? ["ours", "ow1", "ow2"] : ["ow2", "ow1", "ours"];
        for (const who of order) {
          const out = path.join(work, who);
          runs[who]!.push(who === "ours" ? ours(input, out) : orthanc(input, out, who === "ow1" ? 1 : 2));
          if (r === 0 && who === "ours") errors.ours = dciodvfyErrors(out);
          if (r === 0 && who === "ow1") errors = { ...errors, ow: dciodvfyErrors(out) };
          console.error(
            `${size} ${who} round ${r + 1}: ${runs[who]!.at(-1)!.seconds.toFixed(2)} s, ${runs[who]!.at(-1)!.rssMb.toFixed(0)} MB`,
          );
        }
      }
      const m = (who: string) => ({
        s: median(runs[who]!.map((x) => x.seconds)),
        rss: Math.max(...runs[who]!.map((x) => x.rssMb)),
        files: runs[who]![0]!.files,
        outMb: runs[who]![0]!.outMb,
      });
      const o = m("ours");
      for (const [who, label] of [
        ["ours", "FIONA convertSlide (1 worker thread)"],
        ["ow1", "OrthancWSIDicomizer --threads 1"],
        ["ow2", "OrthancWSIDicomizer --threads 2"],
      ] as const) {
        const x = m(who);
        const ratio = who === "ours" ? "1.00x" : `${(x.s / o.s).toFixed(2)}x slower`;
        const err = who === "ours" ? errors.ours : who === "ow1" ? errors.ow : "";
        rows.push(
          `| ${size}x${size} (${inputMb.toFixed(0)} MB) | ${label} | ${x.s.toFixed(2)} s | ${ratio} | ${x.rss.toFixed(0)} MB | ${x.files} files, ${x.outMb.toFixed(0)} MB | ${err} |`,
        );
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const text = [
    `## Whole-slide conversion: pyramidal JPEG TIFF (${TILE} tiles, Q 80) to one DICOM WSM instance per level`,
    "",
    `${new Date().toISOString()}; Node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}); OrthancWSIDicomizer 1.1 (--max-size 0, no re-encoding); wall time is the (upper) median of ${ROUNDS} alternating rounds; peak RSS is the maximum over the rounds (/usr/bin/time -v). dciodvfy errors counted on the smallest level of the first round.`,
    "",
    "| slide | converter | wall time | vs FIONA | peak RSS | output | dciodvfy errors |",
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(text);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(path.join(resultsDir, "wsi.md"), text);
  console.error(`written to ${path.relative(process.cwd(), path.join(resultsDir, "wsi.md"))}`);
}

main();
