import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateStudy } from "../support/generate.js";
import {
  archivedFiles,
  listFiles,
  startTestReceiver,
  storescu,
  tempDir,
  waitFor,
  type TestReceiver,
} from "./helpers.js";
import { commandSet, RawScu, splitPart10 } from "./raw-scu.js";

const MR = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_LE = "1.2.840.10008.1.2.1";

interface Sidecar {
  reason: string;
  status: string;
  format: string;
  callingAe: string;
  calledAe: string;
  peer: string;
  receivedAt: string;
  commandSopInstanceUid: string;
  bytes: number;
}

function sidecars(dir: string): Sidecar[] {
  return listFiles(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => JSON.parse(fs.readFileSync(f, "utf8")) as Sidecar);
}

describe("receiver with bad input", () => {
  let rx: TestReceiver;
  let genDir: string;

  beforeAll(async () => {
    rx = await startTestReceiver();
    genDir = tempDir("bad");
  });
  afterAll(async () => {
    await rx?.close();
    fs.rmSync(genDir, { recursive: true, force: true });
  });

  function good(name: string) {
    return generateStudy({ outDir: path.join(genDir, name), seed: `${name}-x`, fileSize: 4096 });
  }

  it("answers 0xC000 for truncated and non-DICOM datasets, quarantines them, and keeps serving", async () => {
    const study = good("raw");
    const { dataset } = splitPart10(fs.readFileSync(study.files[0]!));
    const sop = study.sopInstanceUids[0]!;
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    const assoc = await scu.associate("BADSCU", "FIONA", [
      { id: 1, abstractSyntax: MR, transferSyntaxes: [EXPLICIT_LE] },
    ]);
    expect(assoc.accepted).toBe(true);

    const truncated = await scu.store(1, MR, sop, dataset.subarray(0, dataset.length - 1000));
    expect(truncated?.status).toBe(0xc000);
    const garbage = await scu.store(
      1,
      MR,
      "1.2.3.4.5",
      Buffer.from("this is not a DICOM dataset at all, sorry!!"),
    );
    expect(garbage?.status).toBe(0xc000);
    const empty = await scu.store(1, MR, "1.2.3.4.6", Buffer.alloc(0));
    expect(empty?.status).toBe(0xc000);
    const badCommandUid = await scu.store(1, MR, "1.2.3/../../x", dataset);
    expect(badCommandUid?.status).toBe(0xc000);
    const mismatch = await scu.store(1, MR, "1.2.3.4.7", dataset);
    expect(mismatch?.status).toBe(0xa900);
    expect(mismatch?.errorComment).toContain("SOPInstanceUID");
    const wrongClass = await scu.store(1, "1.2.840.10008.5.1.4.1.1.2", sop, dataset);
    expect(wrongClass?.status).toBe(0xa900);

    // the same association still works
    const ok = await scu.store(1, MR, sop, dataset);
    expect(ok?.status).toBe(0);
    await scu.release();

    expect(archivedFiles(rx.archive)).toEqual([
      path.join(rx.archive, `scp_${study.studyInstanceUid}`, `MR.${sop}`),
    ]);
    const cars = sidecars(rx.quarantine);
    expect(cars).toHaveLength(6);
    expect(listFiles(rx.quarantine).filter((f) => f.endsWith(".dcm"))).toHaveLength(6);
    for (const c of cars) {
      expect(c.callingAe).toBe("BADSCU");
      expect(c.calledAe).toBe("FIONA");
      expect(c.peer).toBe("127.0.0.1");
      expect(["0xC000", "0xA900"]).toContain(c.status);
    }
    expect(cars.map((c) => c.status).sort()).toEqual([
      "0xA900",
      "0xA900",
      "0xC000",
      "0xC000",
      "0xC000",
      "0xC000",
    ]);
    const text = JSON.stringify(cars) + JSON.stringify(rx.logs);
    for (const marker of Object.values(study.phi)) expect(text).not.toContain(marker);
    // a truncated Part-10 copy is kept as it arrived (with our meta header)
    const truncatedCopy = listFiles(rx.quarantine).find((f) => {
      const sc = `${f.slice(0, -4)}.json`;
      return (
        f.endsWith(".dcm") &&
        fs.existsSync(sc) &&
        JSON.parse(fs.readFileSync(sc, "utf8")).reason.includes("truncated")
      );
    });
    expect(truncatedCopy).toBeDefined();
    expect(splitPart10(fs.readFileSync(truncatedCopy!)).dataset.length).toBe(dataset.length - 1000);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);
  });

  it("rejects StudyInstanceUIDs that are not path-safe (storescu), stores nothing outside the data dir", async () => {
    const traversal = generateStudy({
      outDir: path.join(genDir, "trav"),
      seed: `trav-x`,
      studyInstanceUid: "1.2.3/../../x",
      fileSize: 1024,
    });
    const tooLong = generateStudy({
      outDir: path.join(genDir, "long"),
      seed: `long-x`,
      studyInstanceUid: `1.2.${"3".repeat(70)}`,
      fileSize: 1024,
    });
    const before = sidecars(rx.quarantine).length;
    for (const s of [traversal, tooLong]) {
      const r = await storescu(rx.handle.port, s.files, ["-v"]);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/0xc000|Cannot understand|Error: Cannot/i);
    }
    const after = sidecars(rx.quarantine).slice(before);
    expect(after).toHaveLength(2);
    expect(after.map((c) => c.reason).sort()).toEqual([
      "StudyInstanceUID invalid",
      "StudyInstanceUID invalid",
    ]);
    expect(fs.existsSync(path.join(rx.dataDir, "site", "x"))).toBe(false);
    expect(fs.existsSync(path.join(rx.dataDir, "x"))).toBe(false);
    expect(archivedFiles(rx.archive).some((f) => f.includes(".."))).toBe(false);

    // and a good file right after
    const ok = good("after");
    const r = await storescu(rx.handle.port, ok.files);
    expect(r.code, r.stderr).toBe(0);
    expect(
      fs.existsSync(path.join(rx.archive, `scp_${ok.studyInstanceUid}`, `MR.${ok.sopInstanceUids[0]}`)),
    ).toBe(true);
  });

  it("survives an association aborted in the middle of a dataset", async () => {
    const study = good("abort");
    const { dataset } = splitPart10(fs.readFileSync(study.files[0]!));
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    await scu.associate("ABORTER", "FIONA", [{ id: 1, abstractSyntax: MR, transferSyntaxes: [EXPLICIT_LE] }]);
    // command plus the first half of the dataset (not the last fragment), then abort
    const cmd = commandSet({
      commandField: 0x0001,
      messageId: scu.nextMessageId(),
      sopClassUid: MR,
      sopInstanceUid: study.sopInstanceUids[0]!,
      hasDataset: true,
    });
    scu.sendPdv(1, true, true, cmd);
    scu.sendPdv(1, false, false, dataset.subarray(0, Math.floor(dataset.length / 2)));
    await new Promise((r) => setTimeout(r, 50));
    scu.abort();
    await new Promise((r) => setTimeout(r, 100));
    const r = await storescu(rx.handle.port, study.files);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);
    await waitFor(() => rx.handle.activeAssociations() === 0); // storescu may exit before our close event
  });

  it("aborts an association that breaks the protocol, and keeps serving", async () => {
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    await scu.associate("BROKEN", "FIONA", [{ id: 1, abstractSyntax: MR, transferSyntaxes: [EXPLICIT_LE] }]);
    // a dataset fragment without a command, on a context that was never proposed
    scu.write(Buffer.from([0x04, 0, 0, 0, 0, 10, 0, 0, 0, 6, 99, 0x02, 1, 2, 3, 4]));
    const reply = await scu.nextPdu();
    expect(reply.length === 0 || reply[0] === 0x07).toBe(true); // A-ABORT or closed
    const study = good("afterbroken");
    const r = await storescu(rx.handle.port, study.files);
    expect(r.code, r.stderr).toBe(0);
  });
});
