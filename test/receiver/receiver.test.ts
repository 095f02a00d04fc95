import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import {
  archivedFiles,
  normalizedDump,
  run,
  startTestReceiver,
  storescu,
  tempDir,
  waitFor,
  type TestReceiver,
} from "./helpers.js";
import { RawScu, splitPart10 } from "./raw-scu.js";

const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const IMPLICIT_LE = "1.2.840.10008.1.2";
const EXPLICIT_BE = "1.2.840.10008.1.2.2";

describe("receiver", () => {
  let rx: TestReceiver;
  let genDir: string;
  let studies: GeneratedStudy[];

  beforeAll(async () => {
    rx = await startTestReceiver();
    genDir = tempDir("gen");
    studies = [
      generateStudy({
        outDir: path.join(genDir, "mr"),
        seed: `mr-x`,
        modality: "MR",
        series: 3,
        instancesPerSeries: 3,
        fileSize: 2048,
        pixelFill: "random",
      }),
      generateStudy({
        outDir: path.join(genDir, "ct"),
        seed: `ct-x`,
        modality: "CT",
        series: 1,
        instancesPerSeries: 2,
        fileSize: 2048,
        transferSyntax: "implicit-le",
      }),
      generateStudy({
        outDir: path.join(genDir, "sr"),
        seed: `sr-x`,
        modality: "SR",
        instancesPerSeries: 1,
        transferSyntax: "explicit-be",
      }),
    ];
  });

  afterAll(async () => {
    await rx?.close();
    fs.rmSync(genDir, { recursive: true, force: true });
  });

  it("stores a multi-series study from storescu with the dataset unchanged, then enqueues one job per file", async () => {
    const r = await storescu(rx.handle.port, [genDir], ["+sd", "+r", "-aet", "MODALITY1"]);
    expect(r.code, r.stderr).toBe(0);

    const all = studies.flatMap((s) =>
      s.files.map((file, i) => ({ study: s, file, sop: s.sopInstanceUids[i] as string })),
    );
    const archived = archivedFiles(rx.archive);
    expect(archived).toHaveLength(all.length);

    for (const { study, file, sop } of all) {
      const expected = path.join(rx.archive, `scp_${study.studyInstanceUid}`, `${study.modality}.${sop}`);
      expect(fs.existsSync(expected), expected).toBe(true);
      expect(await normalizedDump(expected)).toEqual(await normalizedDump(file));
    }

    // the meta header is ours, with the calling AE as source
    const one = path.join(
      rx.archive,
      `scp_${studies[0]!.studyInstanceUid}`,
      `MR.${studies[0]!.sopInstanceUids[0]}`,
    );
    const meta = (
      await run("dcmdump", ["-q", "-M", "+P", "0002,0000", "+P", "0002,0013", "+P", "0002,0016", one])
    ).stdout;
    expect(meta).toContain("[FIONA_TS_0.1]");
    expect(meta).toContain("[MODALITY1]");

    const jobs = await rx.queue.getJobs(["waiting", "prioritized", "delayed", "active"]);
    expect(jobs).toHaveLength(all.length);
    expect(jobs.map((j) => j.data.path).sort()).toEqual(archived.map((f) => path.resolve(f)).sort());
    for (const j of jobs) {
      expect(j.name).toBe("ingest");
      expect(j.data.callingAe).toBe("MODALITY1");
      expect(j.data.calledAe).toBe("FIONA");
      expect(j.data.peer).toBe("127.0.0.1");
      expect(Date.parse(j.data.receivedAt)).not.toBeNaN();
      expect(Object.keys(j.data).sort()).toEqual(["calledAe", "callingAe", "path", "peer", "receivedAt"]);
    }
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);
    expect(rx.handle.stats().instancesStored).toBe(all.length);
    // no PHI in any log line
    const logText = JSON.stringify(rx.logs);
    for (const marker of Object.values(studies[0]!.phi)) expect(logText).not.toContain(marker);
  });

  it("keeps the received dataset bytes exactly (raw SCU, three transfer syntaxes, odd fragmenting)", async () => {
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    const contexts = [
      { id: 1, abstractSyntax: "1.2.840.10008.5.1.4.1.1.4", transferSyntaxes: [EXPLICIT_LE] },
      { id: 3, abstractSyntax: "1.2.840.10008.5.1.4.1.1.2", transferSyntaxes: [IMPLICIT_LE] },
      { id: 5, abstractSyntax: "1.2.840.10008.5.1.4.1.1.88.11", transferSyntaxes: [EXPLICIT_BE] },
    ];
    const assoc = await scu.associate("RAWSCU", "ANY_CALLED", contexts);
    expect(assoc.accepted).toBe(true);
    expect([...assoc.contexts.entries()]).toEqual([
      [1, EXPLICIT_LE],
      [3, IMPLICIT_LE],
      [5, EXPLICIT_BE],
    ]);
    const cases = [
      { file: studies[0]!.files[4]!, pc: 1, fragment: 333 },
      { file: studies[1]!.files[0]!, pc: 3, fragment: 1000 },
      { file: studies[2]!.files[0]!, pc: 5, fragment: 64 },
    ];
    for (const c of cases) {
      const bytes = fs.readFileSync(c.file);
      const { dataset } = splitPart10(bytes);
      const study = studies.find((s) => s.files.includes(c.file))!;
      const sop = study.sopInstanceUids[study.files.indexOf(c.file)]!;
      const res = await scu.store(c.pc, study.sopClassUid, sop, dataset, { fragmentSize: c.fragment });
      expect(res?.status).toBe(0);
      const archivedPath = path.join(rx.archive, `scp_${study.studyInstanceUid}`, `${study.modality}.${sop}`);
      const archived = splitPart10(fs.readFileSync(archivedPath));
      expect(archived.transferSyntaxUid).toBe(assoc.contexts.get(c.pc));
      expect(Buffer.compare(archived.dataset, dataset)).toBe(0);
    }
    expect((await scu.echo(1))?.status).toBe(0);
    await scu.release();
    const job = (await rx.queue.getJobs(["waiting"])).find((j) => j.data.callingAe === "RAWSCU");
    expect(job?.data.calledAe).toBe("ANY_CALLED");
  });

  it("answers C-ECHO", async () => {
    const r = await run("echoscu", ["-aec", "WHATEVER", "127.0.0.1", String(rx.handle.port)]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("stores a duplicate instance again (new bytes, one more job) and keeps serving", async () => {
    const file = studies[0]!.files[0]!;
    const before = (await rx.queue.getJobs(["waiting"])).length;
    const r = await storescu(rx.handle.port, [file]);
    expect(r.code, r.stderr).toBe(0);
    expect((await rx.queue.getJobs(["waiting"])).length).toBe(before + 1);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);
  });

  it("recreates archive/.tmp and the study directory when a cleanup removed them", async () => {
    const file = studies[1]!.files[1]!;
    fs.rmSync(path.join(rx.archive, ".tmp"), { recursive: true, force: true });
    fs.rmSync(path.join(rx.archive, `scp_${studies[1]!.studyInstanceUid}`), { recursive: true, force: true });
    const r = await storescu(rx.handle.port, [file]);
    expect(r.code, r.stderr).toBe(0);
    const archived = path.join(
      rx.archive,
      `scp_${studies[1]!.studyInstanceUid}`,
      `CT.${studies[1]!.sopInstanceUids[1]}`,
    );
    expect(fs.existsSync(archived)).toBe(true);
  });

  it("tracks active associations and rejects unsupported abstract syntaxes", async () => {
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    const assoc = await scu.associate("RAWSCU", "FIONA", [
      { id: 1, abstractSyntax: "1.2.840.10008.5.1.4.1.2.2.1", transferSyntaxes: [EXPLICIT_LE] }, // C-FIND
      { id: 3, abstractSyntax: "1.2.840.10008.1.1", transferSyntaxes: [IMPLICIT_LE] },
      { id: 5, abstractSyntax: "1.3.12.2.1107.5.9.1", transferSyntaxes: [EXPLICIT_LE] }, // private storage
      { id: 7, abstractSyntax: "1.2.840.10008.3.1.2.3.3", transferSyntaxes: [EXPLICIT_LE] }, // MPPS
    ]);
    expect([...assoc.contexts.keys()]).toEqual([3, 5]);
    expect(rx.handle.activeAssociations()).toBe(1);
    await scu.release();
    await waitFor(() => rx.handle.activeAssociations() === 0);
  });
});
