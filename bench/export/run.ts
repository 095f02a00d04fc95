/**
 * Export benchmark: our streaming ZIP (src/export/zip.ts) against the `zip` command on the
 * same files, and our SFTP upload (src/sftp/upload.ts: temp name, size check, rename, SHA-256 sidecar)
 * against OpenSSH's `sftp` client (`put`) to the same loopback sshd.
 *
 *   npx tsx bench/export/run.ts [--mb 1024] [--size 131072] [--rounds 2] [--fill random|pattern]
 *
 * Both ZIPs use deflate level 6 (zip's default). Ours runs in this process; the times of the `zip` and
 * `sftp` commands include their process start. Peak RSS of this process is sampled during our ZIP to
 * show flat memory. Writes bench/results/export.md.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { sftpDestinationSchema } from "../../src/export/config.js";
import { writeZip } from "../../src/export/zip.js";
import { sha256File, uploadFile } from "../../src/sftp/upload.js";
import { generateStudy } from "../../test/support/generate.js";
import { startSshd } from "../../test/sftp/sshd.js";

const { values: args } = parseArgs({
  options: {
    mb: { type: "string", default: "1024" },
    size: { type: "string", default: "131072" },
    rounds: { type: "string", default: "2" },
    fill: { type: "string", default: "random" },
  },
});
const size = Number(args.size);
const totalBytes = Number(args.mb) * 1024 * 1024;
const rounds = Number(args.rounds);
const seriesCount = 4;
const perSeries = Math.ceil(totalBytes / size / seriesCount);

const work = mkdtempSync(path.join(tmpdir(), "fiona-bench-export-"));
const time = async (fn: () => unknown) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.error(`generating ${seriesCount} x ${perSeries} files of ${size} bytes…`);
const study = generateStudy({
  outDir: path.join(work, "study"),
  seed: "bench-export",
  series: seriesCount,
  instancesPerSeries: perSeries,
  fileSize: size,
  pixelFill: args.fill === "pattern" ? "pattern" : "random",
});
const studyBytes = study.totalBytes;
const entries = study.files.map((f) => ({ file: f, name: path.relative(path.join(work, "study"), f) }));

const ours: number[] = [];
const zipCmd: number[] = [];
let peakRss = 0;
let ourSize = 0;
let zipSize = 0;
for (let r = 0; r < rounds; r++) {
  const a = path.join(work, "ours.zip");
  const b = path.join(work, "cmd.zip");
  rmSync(a, { force: true });
  rmSync(b, { force: true });
  const base = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss - base)), 50);
  ours.push(await time(() => writeZip(a, entries)));
  clearInterval(sampler);
  zipCmd.push(
    await time(() => {
      const p = spawnSync("zip", ["-q", "-r", "-6", b, "."], { cwd: path.join(work, "study") });
      if (p.status !== 0) throw new Error(`zip failed: ${p.stderr.toString()}`);
    }),
  );
  ourSize = statSync(a).size;
  zipSize = statSync(b).size;
}
rmSync(path.join(work, "cmd.zip"), { force: true });

const sshd = await startSshd();
const archive = path.join(work, "ours.zip");
const dest = sftpDestinationSchema.parse({
  host: "127.0.0.1",
  port: sshd.port,
  user: process.env.USER ?? "root",
  keyPath: sshd.userKey,
  remoteDir: sshd.remoteDir,
  hostKeySha256: sshd.hostFingerprint,
});
// The export stage records the archive's SHA-256 when it builds it; the upload reuses it.
const archiveSha = await sha256File(archive);
const up: number[] = [];
const sftpCmd: number[] = [];
const batch = path.join(work, "batch");
writeFileSync(batch, `put ${archive} ${sshd.remoteDir}/cmd.zip\n`);
for (let r = 0; r < rounds; r++) {
  for (const f of readdirSync(sshd.remoteDir)) rmSync(path.join(sshd.remoteDir, f));
  up.push(await time(() => uploadFile(dest, archive, { remoteName: "ours.zip", sha256: archiveSha })));
  sftpCmd.push(
    await time(() => {
      const p = spawnSync("sftp", [
        "-q",
        "-b",
        batch,
        "-i",
        sshd.userKey,
        "-P",
        String(sshd.port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        `UserKnownHostsFile=${path.join(work, "known_hosts")}`,
        `${dest.user}@127.0.0.1`,
      ]);
      if (p.status !== 0) throw new Error(`sftp failed: ${p.stderr.toString()}`);
    }),
  );
}
await sshd.stop();

const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
const rate = (s: number, bytes: number) => `${(bytes / 1024 / 1024 / s).toFixed(0)} MB/s`;
const tz = median(ours);
const tzc = median(zipCmd);
const tu = median(up);
const tuc = median(sftpCmd);
const md = [
  "# Export benchmark",
  "",
  `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.version}.`,
  `Study: ${study.files.length} files of ${size} bytes in ${seriesCount} series, ${mb(studyBytes)} MB, ${args.fill} pixel data. Median of ${rounds} rounds.`,
  `Command: \`npx tsx bench/export/run.ts --mb ${args.mb} --rounds ${rounds} --fill ${args.fill}\`.`,
  "",
  "| task | ours | reference | ours / reference speed |",
  "| --- | --- | --- | --- |",
  `| ZIP, deflate 6 | ${tz.toFixed(2)} s (${rate(tz, studyBytes)}), ${mb(ourSize)} MB | zip -r -6: ${tzc.toFixed(2)} s (${rate(tzc, studyBytes)}), ${mb(zipSize)} MB | ${(tzc / tz).toFixed(2)}x |`,
  `| SFTP upload of the ZIP (+ size check, rename, SHA-256 sidecar) | ${tu.toFixed(2)} s (${rate(tu, ourSize)}) | OpenSSH sftp put: ${tuc.toFixed(2)} s (${rate(tuc, ourSize)}) | ${(tuc / tu).toFixed(2)}x |`,
  "",
  `Peak RSS growth during our ZIP: ${mb(peakRss)} MB (streaming: one file at a time).`,
  "",
].join("\n");
console.log(md);
const out = fileURLToPath(new URL("../results/export.md", import.meta.url));
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, md);
rmSync(work, { recursive: true, force: true });
