#!/usr/bin/env node
/**
 * Throughput of the de-identification engine, single thread, on generated 128 KB MR files.
 *
 *   node bench/deid/engine.mjs [files=2000] [rounds=5]
 *
 * Compiles src/deid and the test generator with tsc into a temporary directory (no dist/ needed),
 * generates `files` MR instances (explicit VR LE, private tags, nested sequences), reads them into
 * memory and times `deidentify` over all of them, `rounds` times (default FIONA profile, private tags
 * removed; then private tags kept; then the basic profile). Prints files/s and MB/s per round.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const count = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 5);
const work = mkdtempSync(path.join(tmpdir(), "deid-bench-"));
try {
  writeFileSync(path.join(work, "package.json"), '{ "type": "module" }\n');
  symlinkSync(path.join(root, "node_modules"), path.join(work, "node_modules"));
  execFileSync(
    process.execPath,
    [
      path.join(root, "node_modules/typescript/bin/tsc"),
      path.join(root, "src/deid/index.ts"),
      path.join(root, "test/support/generate.ts"),
      ...[
        "--outDir",
        path.join(work, "out"),
        "--rootDir",
        root,
        "--module",
        "NodeNext",
        "--moduleResolution",
        "NodeNext",
      ],
      ...["--target", "ES2022", "--skipLibCheck", "--types", "node", "--strict"],
    ],
    { stdio: "inherit" },
  );
  const { deidentify } = await import(path.join(work, "out/src/deid/index.js"));
  const { generateStudy } = await import(path.join(work, "out/test/support/generate.js"));
  const study = generateStudy({
    outDir: path.join(work, "data"),
    seed: "bench",
    modality: "MR",
    instancesPerSeries: count,
  });
  const inputs = study.files.map((f) => readFileSync(f));
  const megabytes = inputs.reduce((n, b) => n + b.length, 0) / 1e6;
  console.log(
    `${inputs.length} files, ${((megabytes / inputs.length) * 1000).toFixed(0)} KB each, node ${process.version}`,
  );
  const secret = "bench-secret-bench-secret-bench-secret";
  const setups = [
    ["fiona, private removed", { name: "BENCH" }],
    ["fiona, private kept", { name: "BENCH", privateTags: "keep" }],
    ["basic profile", { name: "BENCH", profile: "basic" }],
  ];
  for (const [label, project] of setups) {
    for (let r = 0; r < rounds; r++) {
      const start = process.hrtime.bigint();
      let bytes = 0;
      for (let i = 0; i < inputs.length; i++) {
        const out = deidentify(inputs[i], { project, participant: "BENCH_0001", event: "baseline", secret });
        bytes += out.bytes.length;
      }
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      console.log(
        `${label.padEnd(24)} round ${r + 1}: ${(inputs.length / seconds).toFixed(0).padStart(6)} files/s  ` +
          `${(megabytes / seconds).toFixed(0).padStart(5)} MB/s  (${((seconds * 1e6) / inputs.length).toFixed(0)} us/file, out ${bytes} B)`,
      );
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
