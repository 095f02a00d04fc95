/** Finding the dataset in a Part-10 file, and the status table. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import dicomParser from "dicom-parser";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  NotSendableError,
  classifyStatus,
  parsePart10Meta,
  readPart10ForStore,
  readPart10Meta,
} from "../../src/dimse/index.js";
import { generateStudy, TRANSFER_SYNTAX, type TransferSyntaxName } from "../support/generate.js";

let work: string;
const file: Partial<Record<TransferSyntaxName, string>> = {};

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "fiona-meta-"));
  for (const ts of ["explicit-le", "implicit-le", "explicit-be"] as const) {
    file[ts] = generateStudy({
      outDir: path.join(work, ts),
      seed: ts,
      transferSyntax: ts,
      fileSize: 4096,
    }).files[0]!;
  }
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Insert (0002,0100) and a large (0002,0102) PrivateInformation after the existing meta group. */
function withLargeMeta(bytes: Buffer, extra: number): Buffer {
  const meta = parsePart10Meta(bytes);
  const creator = Buffer.from("1.2.3.4\0", "latin1");
  const e1 = Buffer.alloc(8);
  e1.writeUInt16LE(0x0002, 0);
  e1.writeUInt16LE(0x0100, 2);
  e1.write("UI", 4, "latin1");
  e1.writeUInt16LE(creator.length, 6);
  const e2 = Buffer.alloc(12);
  e2.writeUInt16LE(0x0002, 0);
  e2.writeUInt16LE(0x0102, 2);
  e2.write("OB", 4, "latin1");
  e2.writeUInt32LE(extra, 8);
  const out = Buffer.concat([
    bytes.subarray(0, meta.datasetOffset),
    e1,
    creator,
    e2,
    Buffer.alloc(extra, 0x55),
    bytes.subarray(meta.datasetOffset),
  ]);
  out.writeUInt32LE(out.readUInt32LE(140) + e1.length + creator.length + e2.length + extra, 140);
  return out;
}

describe("parsePart10Meta", () => {
  test.each(["explicit-le", "implicit-le", "explicit-be"] as const)(
    "%s: dataset offset agrees with dicom-parser",
    (ts) => {
      const bytes = readFileSync(file[ts]!);
      const meta = parsePart10Meta(bytes);
      const reference = dicomParser.readPart10Header(bytes) as ReturnType<
        typeof dicomParser.readPart10Header
      > & {
        position: number;
      };
      expect(meta.datasetOffset).toBe(reference.position);
      expect(meta.datasetOffset).toBe(144 + bytes.readUInt32LE(140)); // group length
      expect(meta.transferSyntaxUid).toBe(TRANSFER_SYNTAX[ts]);
      expect(meta.sopClassUid).toBe("1.2.840.10008.5.1.4.1.1.4");
      expect(meta.sopInstanceUid).toMatch(/^2\.25\.\d{39}$/);
      const request = readPart10ForStore(file[ts]!);
      expect(request.dataset.byteOffset - bytes.byteOffset).toBeGreaterThanOrEqual(0);
      expect(Buffer.compare(Buffer.from(request.dataset), bytes.subarray(meta.datasetOffset))).toBe(0);
    },
  );

  test("a wrong group length does not move the dataset start", () => {
    const bytes = Buffer.from(readFileSync(file["explicit-le"]!));
    const expected = parsePart10Meta(bytes).datasetOffset;
    bytes.writeUInt32LE(bytes.readUInt32LE(140) + 10, 140);
    expect(parsePart10Meta(bytes).datasetOffset).toBe(expected);
  });

  test("a meta group larger than the 16 KiB head read", () => {
    const big = withLargeMeta(readFileSync(file["explicit-le"]!), 20_000);
    const target = path.join(work, "big-meta.dcm");
    writeFileSync(target, big);
    const meta = readPart10Meta(target);
    expect(meta.datasetOffset).toBe(144 + big.readUInt32LE(140));
    expect(big.readUInt16LE(meta.datasetOffset)).toBe(0x0008);
  });

  test("not Part-10, truncated or incomplete meta groups are NotSendableError", () => {
    const bytes = readFileSync(file["explicit-le"]!);
    expect(() => parsePart10Meta(Buffer.alloc(200))).toThrow(NotSendableError);
    const truncated = path.join(work, "truncated.dcm");
    writeFileSync(truncated, bytes.subarray(0, 160));
    expect(() => readPart10Meta(truncated)).toThrow(/ends inside the meta group/);
    expect(() => readPart10ForStore(truncated)).toThrow(/ends inside the meta group/);
    // Only the group length and version: no UIDs.
    const bare = Buffer.concat([bytes.subarray(0, 144 + 14), Buffer.from([0x08, 0x00, 0x05, 0x00])]);
    bare.writeUInt32LE(14, 140);
    expect(() => parsePart10Meta(bare)).toThrow(/lacks MediaStorageSOPClassUID/);
  });
});

describe("classifyStatus", () => {
  test.each([
    [0x0000, "success", false],
    [0x0001, "warning", false],
    [0xb000, "warning", false],
    [0xb006, "warning", false],
    [0xb007, "warning", false],
    [0xbabc, "warning", false],
    [0xa700, "failure", true],
    [0xa701, "failure", true],
    [0x0213, "failure", true],
    [0x0122, "failure", false],
    [0xa900, "failure", false],
    [0xc000, "failure", false],
    [0xc211, "failure", false],
    [0x0211, "failure", false],
    [0x0212, "failure", false],
    [0x0110, "failure", false],
    [0x0124, "failure", false],
    [0xdead, "failure", false],
  ] as const)("status %i", (status, kind, retryable) => {
    expect(classifyStatus(status)).toEqual({ kind, retryable });
  });
});
