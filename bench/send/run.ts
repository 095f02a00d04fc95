/**
 * C-STORE send benchmark: dcmtk storescu vs our byte-faithful SCU (src/dimse), same files, same
 * storescp receiver (TCP_NODELAY=1 on every dcmtk process).
 *
 *   npx tsx bench/send/run.ts [--files 2000] [--size 131072] [--series 4] [--rounds 3]
 *                             [--receivers write,ignore] [--bit-preserving]
 *
 * Receivers: "write" is storescp writing every file into a temporary directory (the realistic case);
 * "ignore" is storescp --ignore (receive and discard), which leaves the sender as the bottleneck.
 * Senders, run in alternating order each round after one untimed warm-up round:
 * - storescu: one process, one association, `+sd +r` on the study folder (time includes process
 *   start and its directory scan);
 * - ours, one association per series: sendFiles once per series, sequentially;
 * - ours, one association: sendFiles on all files.
 * Ours runs in this process (a long-running worker in production). Received files are counted and
 * deleted between runs, outside the timed part. Prints markdown tables; writes bench/results/send.md.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { sendFiles, type StoreDestination } from "../../src/dimse/index.js";
import { startStorescp } from "../../test/support/peers.js";
import { generateStudy } from "../../test/support/generate.js";

const { values: args } = parseArgs({
  options: {
    files: { type: "string", default: "2000" },
    size: { type: "string", default: String(128 * 1024) },
    series: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
    receivers: { type: "string", default: "write,ignore" },
    /** storescp +B: write the received bytes as they are instead of re-encoding them. */
    "bit-preserving": { type: "boolean", default: false },
  },
});
const FILES = Number(args.files);
const SIZE = Number(args.size);
const SERIES = Number(args.series);
const ROUNDS = Number(args.rounds);
const RECEIVERS = args.receivers.split(",").map((r) => r.trim()) as Array<"write" | "ignore">;

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.join(here, "..", "results");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function run(cmd: string, argv: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      env: { ...process.env, TCP_NODELAY: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
  });
}

interface Setup {
  work: string;
  files: string[];
  perSeries: string[][];
  /** Mean file size in MB. */
  mb: number;
}

async function benchReceiver(setup: Setup, receiver: "write" | "ignore"): Promise<string[]> {
  const { work, files, perSeries, mb } = setup;
  const received = path.join(work, `out-${receiver}`);
  const peer = await startStorescp(received, receiver === "ignore" ? ["--ignore"] : [], {
    verbose: false,
    bitPreserving: args["bit-preserving"],
  });
  const dest: StoreDestination = {
    host: "127.0.0.1",
    port: peer.port,
    calledAe: "RESEARCH",
    callingAe: "FIONA",
  };
  const afterRun = (label: string): void => {
    const names = readdirSync(received);
    for (const n of names) rmSync(path.join(received, n), { force: true });
    const expected = receiver === "ignore" ? 0 : files.length;
    if (names.length !== expected)
      throw new Error(`${label}: storescp wrote ${names.length} files, expected ${expected}`);
  };

  const variants: Array<{ name: string; run: () => Promise<void> }> = [
    {
      name: "dcmtk storescu (1 association, +sd +r)",
      run: async () => {
        const r = await run("storescu", [
          ...["-aet", "FIONA", "-aec", "RESEARCH", "+sd", "+r"],
          ...["127.0.0.1", String(peer.port), path.join(work, "in")],
        ]);
        if (r.code !== 0) throw new Error(`storescu exited with ${r.code}: ${r.output.slice(0, 500)}`);
      },
    },
    {
      name: `ours, 1 association per series (${perSeries.length} sequential)`,
      run: async () => {
        for (const seriesFiles of perSeries) {
          const report = await sendFiles(dest, seriesFiles);
          if (report.succeeded !== seriesFiles.length) throw new Error(`ours: ${report.failed} failures`);
        }
      },
    },
    {
      name: "ours, 1 association for all",
      run: async () => {
        const report = await sendFiles(dest, files);
        if (report.succeeded !== files.length) throw new Error(`ours: ${report.failed} failures`);
      },
    },
  ];

  const times = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const load: number[] = [];
  try {
    for (let round = 0; round <= ROUNDS; round++) {
      for (const v of variants) {
        const started = performance.now();
        await v.run();
        const seconds = (performance.now() - started) / 1000;
        afterRun(v.name);
        if (round > 0) times.get(v.name)!.push(seconds);
        console.error(
          `[${receiver}] ${round === 0 ? "warm-up" : `round ${round}`}: ${v.name}: ${seconds.toFixed(3)} s`,
        );
      }
      load.push(loadavg()[0]!);
    }
  } finally {
    await peer.stop();
  }

  const baseline = median(times.get(variants[0]!.name)!);
  const rows = variants.map((v) => {
    const t = times.get(v.name)!;
    const m = median(t);
    const cells = [
      v.name,
      m.toFixed(3),
      t.map((x) => x.toFixed(3)).join(", "),
      (files.length / m).toFixed(0),
      ((mb * files.length) / m).toFixed(0),
      `${(baseline / m).toFixed(2)}x`,
    ];
    return `| ${cells.join(" | ")} |`;
  });
  const what =
    receiver === "ignore"
      ? "storescp --ignore (receive and discard: the sender is the bottleneck)"
      : `storescp writing files to a temp dir${args["bit-preserving"] ? " (+B)" : ""}`;
  return [
    `### Receiver: ${what}`,
    "",
    "| Sender | Median (s) | Runs (s) | Files/s | MB/s | Rate vs storescu |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    `1-minute load average during the rounds: ${load.map((l) => l.toFixed(1)).join(", ")}.`,
    "",
  ];
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), "fiona-bench-send-"));
  try {
    const t0 = performance.now();
    const study = generateStudy({
      outDir: path.join(work, "in"),
      seed: "bench-send",
      modality: "MR",
      series: Array.from({ length: SERIES }, (_, i) => ({
        description: `bench series ${i + 1}`,
        instances: Math.floor(FILES / SERIES) + (i < FILES % SERIES ? 1 : 0),
      })),
      fileSize: SIZE,
    });
    const setup: Setup = {
      work,
      files: study.files,
      perSeries: study.series.map((s) => s.files),
      mb: study.totalBytes / study.files.length / 1e6,
    };
    console.error(
      `generated ${setup.files.length} files (${(setup.mb * 1000).toFixed(0)} KB each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    const sections: string[] = [];
    for (const receiver of RECEIVERS) sections.push(...(await benchReceiver(setup, receiver)));

    const dcmtk = (await run("storescu", ["--version"])).output
      .split("\n")[0]
      ?.replace(/^\$dcmtk: /, "")
      .replace(/ \$$/, "");
    const text = [
      `## C-STORE send: ${setup.files.length} MR files of ${(setup.mb * 1000).toFixed(0)} KB in ${SERIES} series`,
      "",
      `${new Date().toISOString()}; Node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}); ${dcmtk ?? "dcmtk"}; TCP_NODELAY=1 on dcmtk tools; loopback; median of ${ROUNDS} alternating rounds after a warm-up round.`,
      "storescu's times include its process start and folder scan; ours runs in-process (as in a worker) and includes reading every file's meta group before the association. \"Rate vs storescu\" > 1 means ours is faster.",
      "",
      ...sections,
    ].join("\n");
    console.log(text);
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, "send.md"), text);
    console.error(`written to ${path.relative(process.cwd(), path.join(resultsDir, "send.md"))}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
