import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import {
  archivedFiles,
  listFiles,
  normalizedDump,
  startTestReceiver,
  storescu,
  tempDir,
  type TestReceiver,
} from "./helpers.js";
import { RawScu, splitPart10 } from "./raw-scu.js";

const MR = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_LE = "1.2.840.10008.1.2.1";

describe("datasets above the spill threshold", () => {
  let rx: TestReceiver;
  let genDir: string;
  let study: GeneratedStudy;

  beforeAll(async () => {
    rx = await startTestReceiver({ receiver: { fsync: true } }, { spillThreshold: 64 * 1024 });
    genDir = tempDir("spill");
    study = generateStudy({
      outDir: path.join(genDir, "big"),
      seed: `spill-x`,
      series: 2,
      instancesPerSeries: 2,
      fileSize: 300 * 1024,
      pixelFill: "random",
    });
  });
  afterAll(async () => {
    await rx?.close();
    fs.rmSync(genDir, { recursive: true, force: true });
  });

  it("streams them to a temporary file and archives them unchanged (fsync on)", async () => {
    const r = await storescu(rx.handle.port, [path.join(genDir, "big")], ["+sd", "+r"]);
    expect(r.code, r.stderr).toBe(0);
    expect(archivedFiles(rx.archive)).toHaveLength(4);
    for (const [i, file] of study.files.entries()) {
      const archived = path.join(
        rx.archive,
        `scp_${study.studyInstanceUid}`,
        `MR.${study.sopInstanceUids[i]}`,
      );
      expect(await normalizedDump(archived)).toEqual(await normalizedDump(file));
    }
    expect((await rx.queue.getJobs(["waiting"])).length).toBe(4);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);

    // below the threshold the in-memory path is used (also with fsync)
    const small = generateStudy({
      outDir: path.join(genDir, "small"),
      seed: `small-x`,
      fileSize: 1024,
    });
    const s = await storescu(rx.handle.port, small.files);
    expect(s.code, s.stderr).toBe(0);
    const archived = path.join(rx.archive, `scp_${small.studyInstanceUid}`, `MR.${small.sopInstanceUids[0]}`);
    expect(await normalizedDump(archived)).toEqual(await normalizedDump(small.files[0]!));
  });

  it("keeps exact bytes, and quarantines a spilled dataset that is truncated", async () => {
    const bytes = fs.readFileSync(study.files[0]!);
    const { dataset } = splitPart10(bytes);
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    await scu.associate("RAWSPILL", "FIONA", [
      { id: 1, abstractSyntax: MR, transferSyntaxes: [EXPLICIT_LE] },
    ]);
    const ok = await scu.store(1, MR, study.sopInstanceUids[0]!, dataset, { fragmentSize: 10_000 });
    expect(ok?.status).toBe(0);
    const archived = path.join(rx.archive, `scp_${study.studyInstanceUid}`, `MR.${study.sopInstanceUids[0]}`);
    expect(Buffer.compare(splitPart10(fs.readFileSync(archived)).dataset, dataset)).toBe(0);

    // truncated inside the pixel data: the head is complete, but PixelData is declared longer than what came
    const cut = dataset.subarray(0, dataset.length - 5000);
    const bad = await scu.store(1, MR, study.sopInstanceUids[1]!, cut);
    expect(bad?.status).toBe(0xc000);
    const garbage = await scu.store(1, MR, "1.2.3.4.99", Buffer.alloc(200 * 1024, 0x41));
    expect(garbage?.status).toBe(0xc000);
    await scu.release();
    const q = listFiles(rx.quarantine).filter((f) => f.endsWith(".dcm"));
    expect(q).toHaveLength(2);
    expect(fs.statSync(q.sort()[0]!).size + fs.statSync(q.sort()[1]!).size).toBeGreaterThan(300_000);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);
  });
});
