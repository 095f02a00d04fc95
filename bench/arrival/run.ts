/**
 * Arrival latency: from the moment storescu has sent a study's last image to the moment the study
 * shows as complete ("arrived") in the Assign page's API, with FIONA as `fiona start`. The design
 * target is quiet time + at most 1 s (the original FIONA: about 15 minutes).
 * Run: npm run build && npx tsx bench/arrival/run.ts   (needs Redis and dcmtk)
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, waitFor } from "../../test/support/env.js";
import { generateStudy } from "../../test/support/generate.js";
import { adminAuth, benchReady } from "../lib/fiona.js";
import { median } from "../lib/peers.js";

const QUIET_SECONDS = Number(process.env.BENCH_QUIET ?? 2);
const STUDIES = 5;
const root = mkdtempSync(path.join(tmpdir(), "fiona-bench-arrival-"));
const port = await freePort();
const httpPort = await freePort();
const fiona = spawn(process.execPath, ["bin/fiona.js", "start"], {
  env: {
    ...process.env,
    FIONA_DATA_DIR: path.join(root, "data"),
    FIONA_DICOM_PORT: String(port),
    FIONA_HTTP_PORT: String(httpPort),
    FIONA_REDIS_PREFIX: `bench-arrival-${path.basename(root)}`,
    FIONA_QUIET_SECONDS: String(QUIET_SECONDS),
    FIONA_LOG_LEVEL: "warn",
  },
  stdio: ["ignore", "ignore", "inherit"],
});
const api = `http://127.0.0.1:${httpPort}/api/studies`;
await waitFor(() => benchReady(httpPort), "ready", 30_000);
const auth = adminAuth(path.join(root, "data"));

const extra: number[] = [];
for (let i = 0; i < STUDIES; i++) {
  const study = generateStudy({
    outDir: path.join(root, `s${i}`),
    seed: `arrival-${i}`,
    series: 2,
    instancesPerSeries: 20,
  });
  execFileSync("storescu", ["-aec", "FIONA", "+sd", "+r", "127.0.0.1", String(port), study.dir], {
    env: { ...process.env, TCP_NODELAY: "1" },
  });
  const sent = performance.now();
  await waitFor(
    async () => {
      const list = (await (await fetch(api, { headers: { Authorization: auth } })).json()) as Array<{
        studyInstanceUid: string;
        status: string;
      }>;
      return (
        list.some((s) => s.studyInstanceUid === study.studyInstanceUid && s.status === "arrived") || undefined
      );
    },
    "arrival",
    60_000,
    20,
  );
  extra.push(performance.now() - sent - QUIET_SECONDS * 1000);
}
fiona.kill("SIGTERM");
await new Promise((r) => fiona.once("exit", r));

const table = [
  `Arrival latency: last image sent -> study complete in /api/studies, quiet time ${QUIET_SECONDS} s, ${STUDIES} studies of 40 images`,
  "",
  "| measure | value |",
  "|---|---|",
  `| time beyond the quiet time, median | ${(median(extra) / 1000).toFixed(2)} s |`,
  `| time beyond the quiet time, worst | ${(Math.max(...extra) / 1000).toFixed(2)} s |`,
  `| all runs | ${extra.map((e) => (e / 1000).toFixed(2)).join(", ")} s |`,
].join("\n");
console.log(table);
mkdirSync("bench/results", { recursive: true });
writeFileSync("bench/results/arrival.md", table + "\n");
rmSync(root, { recursive: true, force: true });
