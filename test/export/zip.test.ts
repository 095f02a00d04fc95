import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  mkdtempSync,
  openSync,
  closeSync,
  ftruncateSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeZip } from "../../src/export/zip.js";

const dir = mkdtempSync(path.join(tmpdir(), "fiona-zip-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Large sparse file (reads as zeros): the streamed path, without writing gigabytes to disk first. */
function sparse(name: string, bytes: number): string {
  const f = path.join(dir, name);
  const fd = openSync(f, "w");
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return f;
}

describe("ZIP writer", () => {
  const big = randomBytes(20 * 1024 * 1024 + 17);
  writeFileSync(path.join(dir, "big.bin"), big);
  writeFileSync(path.join(dir, "small.bin"), "small ü");

  for (const forceZip64 of [false, true]) {
    it(`writes whole-file, streamed, stored and in-memory entries that unzip verifies (forceZip64: ${forceZip64})`, () =>
      (async () => {
        const zip = path.join(dir, `t-${forceZip64}.zip`);
        const size = await writeZip(
          zip,
          [
            { name: "a/small.bin", file: path.join(dir, "small.bin") },
            { name: "a/big.bin", file: path.join(dir, "big.bin") },
            { name: "b/stored.bin", file: path.join(dir, "big.bin"), store: true },
            { name: "manifest.json", content: '{"x":1}\n' },
          ],
          { forceZip64 },
        );
        expect(size).toBe(readFileSync(zip).length);
        expect(execFileSync("unzip", ["-t", zip], { encoding: "utf8" })).toContain("No errors detected");
        expect(execFileSync("unzip", ["-p", zip, "a/big.bin"], { maxBuffer: 64 << 20 }).equals(big)).toBe(
          true,
        );
        expect(execFileSync("unzip", ["-p", zip, "b/stored.bin"], { maxBuffer: 64 << 20 }).equals(big)).toBe(
          true,
        );
        expect(execFileSync("unzip", ["-p", zip, "a/small.bin"], { encoding: "utf8" })).toBe("small ü");
        const tail = readFileSync(zip).subarray(-120);
        expect(tail.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(forceZip64);
      })());
  }

  const large = Number(process.env.FIONA_TEST_EXPORT_MB ?? 2048);
  it(`builds a ${large} MB archive with flat memory use`, async () => {
    const files = [sparse("l1.bin", (large / 2) * 1024 * 1024), sparse("l2.bin", (large / 2) * 1024 * 1024)];
    const zip = path.join(dir, "large.zip");
    const base = process.memoryUsage().rss;
    let peak = 0;
    const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss - base)), 20);
    await writeZip(
      zip,
      files.map((f) => ({ name: path.basename(f), file: f })),
      { level: 1 },
    );
    clearInterval(t);
    expect(peak).toBeLessThan(100 * 1024 * 1024);
    expect(execFileSync("unzip", ["-l", zip], { encoding: "utf8" })).toContain(String(large * 1024 * 1024));
    rmSync(zip);
  }, 300_000);

  // Slow (a 4.5 GiB entry): FIONA_TEST_ZIP64=1 npx vitest run test/export/zip.test.ts
  it.skipIf(!process.env.FIONA_TEST_ZIP64)(
    "switches to ZIP64 by itself for an entry over 4 GiB",
    async () => {
      const f = sparse("huge.bin", 4.5 * 1024 * 1024 * 1024);
      const zip = path.join(dir, "huge.zip");
      await writeZip(
        zip,
        [
          { name: "small.bin", file: path.join(dir, "small.bin") },
          { name: "huge.bin", file: f },
        ],
        { level: 1 },
      );
      expect(execFileSync("unzip", ["-t", zip], { encoding: "utf8" })).toContain("No errors detected");
      expect(execFileSync("unzip", ["-l", zip], { encoding: "utf8" })).toContain(
        String(4.5 * 1024 * 1024 * 1024),
      );
      rmSync(zip);
    },
    600_000,
  );
});
