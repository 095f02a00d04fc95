import fs from "node:fs";
import path from "node:path";
import dicomParser from "dicom-parser";
import { afterAll, describe, expect, it } from "vitest";
import { buildPart10Header, IMPLEMENTATION_CLASS_UID } from "../../src/dicom/part10.js";
import { identifyDataset } from "../../src/receiver/identify.js";
import { chooseTransferSyntax, fileModality, isAcceptedAbstractSyntax } from "../../src/receiver/policy.js";
import { generateStudy, TRANSFER_SYNTAX } from "../support/generate.js";
import { run, tempDir } from "./helpers.js";
import { splitPart10 } from "./raw-scu.js";

const dir = tempDir("units");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("part10 header", () => {
  it("writes a meta group dcmtk reads, UIDs NUL-padded and text space-padded to even length", async () => {
    const header = buildPart10Header({
      sopClassUid: "1.2.840.10008.5.1.4.1.1.4",
      sopInstanceUid: "1.2.3.4.5", // odd length
      transferSyntaxUid: "1.2.840.10008.1.2.1",
      sourceAeTitle: "SCANNER",
    });
    expect(header.subarray(0, 128).every((b) => b === 0)).toBe(true);
    expect(header.toString("latin1", 128, 132)).toBe("DICM");
    expect(header.readUInt32LE(140)).toBe(header.length - 144);
    const sop = header.indexOf("1.2.3.4.5");
    expect(header[sop + 9]).toBe(0); // NUL pad
    const study = generateStudy({ outDir: path.join(dir, "p10"), seed: "p10", fileSize: 64 });
    const file = path.join(dir, "p10.dcm");
    fs.writeFileSync(file, Buffer.concat([header, splitPart10(fs.readFileSync(study.files[0]!)).dataset]));
    const dump = (await run("dcmdump", ["-q", "-M", file])).stdout;
    expect(dump).toContain("(0002,0001) OB 00\\01");
    expect(dump).toContain("(0002,0003) UI [1.2.3.4.5]");
    expect(dump).toContain(`(0002,0012) UI [${IMPLEMENTATION_CLASS_UID}]`);
    expect(dump).toContain("(0002,0013) SH [FIONA_TS_0.1]");
    expect(dump).toContain("(0002,0016) AE [SCANNER]");
    expect(dump).toContain("=LittleEndianExplicit");
  });

  it("omits an empty calling AE and refuses non-UIDs", () => {
    const h = buildPart10Header({
      sopClassUid: "1.2",
      sopInstanceUid: "1.3",
      transferSyntaxUid: "1.2.840.10008.1.2",
    });
    expect(h.includes(Buffer.from([0x02, 0x00, 0x16, 0x00]))).toBe(false);
    expect(() =>
      buildPart10Header({ sopClassUid: "1.2", sopInstanceUid: "1.2/../x", transferSyntaxUid: "1.2" }),
    ).toThrow();
    expect(() =>
      buildPart10Header({
        sopClassUid: "1.2",
        sopInstanceUid: `1.${"2".repeat(70)}`,
        transferSyntaxUid: "1.2",
      }),
    ).toThrow();
  });
});

describe("identifyDataset", () => {
  function viaDicomParser(file: Buffer) {
    const ds = dicomParser.parseDicom(file);
    const s = (t: string) => ds.string(t) || undefined;
    return {
      sopClassUid: s("x00080016"),
      sopInstanceUid: s("x00080018"),
      modality: s("x00080060"),
      studyInstanceUid: s("x0020000d"),
      seriesInstanceUid: s("x0020000e"),
    };
  }

  const samples: string[] = [];
  for (const [modality, ts] of [
    ["MR", "explicit-le"],
    ["CT", "implicit-le"],
    ["SR", "explicit-be"],
    ["SC", "explicit-le"],
  ] as const) {
    const s = generateStudy({
      outDir: path.join(dir, `id-${modality}`),
      seed: modality,
      modality,
      transferSyntax: ts,
      fileSize: 512,
    });
    samples.push(s.files[0]!);
  }
  const pydicom = "/usr/lib/python3/dist-packages/pydicom/data/test_files";
  if (fs.existsSync(pydicom)) {
    for (const f of fs.readdirSync(pydicom)) {
      const p = path.join(pydicom, f);
      if (!f.endsWith(".dcm")) continue;
      const b = fs.readFileSync(p);
      if (b.length < 144 || b.toString("latin1", 128, 132) !== "DICM") continue;
      try {
        dicomParser.parseDicom(b);
        if (b.readUInt16LE(132) === 0x0002 && b.readUInt16LE(134) === 0x0000) samples.push(p);
      } catch {
        // files dicom-parser rejects are covered by the truncation cases below
      }
    }
  }

  it.each(samples.map((f) => [path.basename(f), f]))("agrees with dicom-parser on %s", (_name, file) => {
    const b = fs.readFileSync(file);
    const { metaEnd, transferSyntaxUid } = splitPart10(b);
    const mine = identifyDataset(b, metaEnd, transferSyntaxUid);
    expect(mine.ok).toBe(true);
    const expected = Object.fromEntries(Object.entries(viaDicomParser(b)).filter(([, v]) => v !== undefined));
    expect(mine.ok && mine.identity).toEqual(expected);
  });

  it("fails on truncation inside an element, item or fragment; partial mode checks declared lengths", () => {
    const s = generateStudy({ outDir: path.join(dir, "trunc"), seed: "trunc", fileSize: 4096 });
    const b = fs.readFileSync(s.files[0]!);
    const { metaEnd } = splitPart10(b);
    let failures = 0;
    for (let cut = metaEnd + 1; cut < b.length; cut += 7) {
      const r = identifyDataset(b.subarray(0, cut), metaEnd, TRANSFER_SYNTAX["explicit-le"]);
      if (!r.ok) failures++;
      if (cut > metaEnd + 64) {
        // partial mode: the head of the complete dataset is fine...
        const complete = b.length - metaEnd;
        const head = b.subarray(0, cut);
        expect(identifyDataset(head, metaEnd, TRANSFER_SYNTAX["explicit-le"], complete).ok).toBe(true);
        // ...and the same head of a dataset 50 bytes short fails once the PixelData header is in it
        const pixelValueStart = b.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57])) + 12;
        const short = identifyDataset(head, metaEnd, TRANSFER_SYNTAX["explicit-le"], complete - 50);
        expect(short.ok).toBe(cut < pixelValueStart);
      }
    }
    // only cuts that land exactly on a top-level element boundary can look complete
    expect(failures).toBeGreaterThan(((b.length - metaEnd) / 7) * 0.9);
    expect(
      identifyDataset(Buffer.from("garbage garbage garbage"), 0, TRANSFER_SYNTAX["explicit-le"]).ok,
    ).toBe(false);
    expect(identifyDataset(Buffer.alloc(0), 0, TRANSFER_SYNTAX["explicit-le"]).ok).toBe(false);
  });

  it("reports over-long values so that they fail UID checks", () => {
    const s = generateStudy({
      outDir: path.join(dir, "long"),
      seed: "long",
      studyInstanceUid: `1.2.${"3".repeat(200)}`,
    });
    const b = fs.readFileSync(s.files[0]!);
    const { metaEnd } = splitPart10(b);
    const r = identifyDataset(b, metaEnd, TRANSFER_SYNTAX["explicit-le"]);
    expect(r.ok && r.identity.studyInstanceUid?.endsWith("…")).toBe(true);
  });
});

describe("policy", () => {
  it("accepts verification, storage and private SOP classes only", () => {
    expect(isAcceptedAbstractSyntax("1.2.840.10008.1.1")).toBe(true);
    expect(isAcceptedAbstractSyntax("1.2.840.10008.5.1.4.1.1.4")).toBe(true);
    expect(isAcceptedAbstractSyntax("1.2.840.10008.5.1.4.38.1")).toBe(true);
    expect(isAcceptedAbstractSyntax("1.3.12.2.1107.5.9.1")).toBe(true);
    expect(isAcceptedAbstractSyntax("1.2.840.10008.5.1.4.1.2.2.1")).toBe(false);
    expect(isAcceptedAbstractSyntax("1.2.840.10008.3.1.2.3.3")).toBe(false);
    expect(isAcceptedAbstractSyntax("1.2.840.10008.1.20.1")).toBe(false);
    expect(isAcceptedAbstractSyntax("not a uid")).toBe(false);
  });

  it("takes the first proposed standard transfer syntax", () => {
    expect(chooseTransferSyntax(["1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1"])).toBe("1.2.840.10008.1.2.2");
    expect(chooseTransferSyntax(["1.2.840.113619.5.2", "1.2.840.10008.1.2"])).toBe("1.2.840.10008.1.2");
    expect(chooseTransferSyntax(["1.2.840.113619.5.2"])).toBe("1.2.840.113619.5.2");
    expect(chooseTransferSyntax([])).toBeUndefined();
  });

  it("sanitises the modality for file names", () => {
    expect(fileModality("MR")).toBe("MR");
    expect(fileModality(undefined)).toBe("UN");
    expect(fileModality("../ct x")).toBe("CTX");
    expect(fileModality("a".repeat(40))).toBe("A".repeat(16));
  });
});
