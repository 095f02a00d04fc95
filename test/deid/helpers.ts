/** Shared helpers for the de-identification engine tests. */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { deflateRawSync } from "node:zlib";
import dicomParser from "dicom-parser";
import { buildPart10Header } from "../../src/dicom/part10.js";
import {
  deidentify,
  type DeidContext,
  type DeidResult,
  type ProjectDeidInput,
} from "../../src/deid/index.js";
import type { DicomElement, DicomElements } from "../support/generate.js";

const require = createRequire(import.meta.url);

interface DcmjsRead {
  data: {
    DicomMessage: {
      readFile(
        buffer: ArrayBuffer,
        options?: Record<string, unknown>,
      ): { meta: DicomElements; dict: DicomElements };
    };
  };
}
const dcmjs = require("dcmjs") as DcmjsRead;

export const SECRET = "test-site-secret-0123456789abcdef";

/** A temporary directory removed by the returned cleanup function. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function ctx(
  project: ProjectDeidInput,
  more: Partial<Omit<DeidContext, "project">> = {},
): DeidContext {
  return { project, participant: "SUBJ_0001", event: "baseline", secret: SECRET, ...more };
}

/** De-identify and fail when the instance is dropped. */
export function deid(bytes: Uint8Array, context: DeidContext): DeidResult {
  const r = deidentify(bytes, context);
  if (r.dropped !== undefined) throw new Error(`unexpectedly dropped: ${r.dropped}`);
  return r;
}

/** Parse with dcmjs (an independent reader; handles every transfer syntax the engine writes). */
export function parse(bytes: Uint8Array): { meta: DicomElements; dict: DicomElements } {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return dcmjs.data.DicomMessage.readFile(ab);
}

/** First value of an element as text (PN: the alphabetic group); undefined when absent, "" when empty. */
export function value(ds: DicomElements, tag: string): string | undefined {
  const e: DicomElement | undefined = ds[tag.toUpperCase()];
  if (!e) return undefined;
  const v = e.Value?.[0];
  if (v === undefined || v === null) return "";
  if (v instanceof ArrayBuffer)
    return Buffer.from(v)
      .toString("latin1")
      .replace(/[ \0]+$/, "");
  if (typeof v === "object" && v !== null && "Alphabetic" in v)
    return String((v as { Alphabetic?: string }).Alphabetic ?? "");
  return typeof v === "string" ? v.replace(/ +$/, "") : String(v);
}

/** Items of a sequence element. */
export function items(ds: DicomElements, tag: string): DicomElements[] {
  return (ds[tag.toUpperCase()]?.Value ?? []) as DicomElements[];
}

/** Run dcmdump on bytes; returns exit status, stdout and stderr. */
export function dcmdump(
  bytes: Uint8Array,
  dir: string,
  args: string[] = [],
): { status: number; out: string; err: string } {
  const file = path.join(dir, `dump-${process.pid}-${Math.random().toString(36).slice(2)}.dcm`);
  writeFileSync(file, bytes);
  const r = spawnSync("dcmdump", [...args, file], { encoding: "utf8" });
  rmSync(file, { force: true });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Error lines of dciodvfy (warnings ignored), sorted. */
export function dciodvfyErrors(file: string): string[] {
  const r = spawnSync("dciodvfy", [file], { encoding: "utf8" });
  return `${r.stdout}\n${r.stderr}`
    .split("\n")
    .filter((l) => l.startsWith("Error"))
    .sort();
}

/** Split a Part-10 file into [meta group end offset, transfer syntax]. */
function metaEnd(file: Buffer): number {
  let pos = 132;
  while (pos + 8 <= file.length && file.readUInt16LE(pos) === 0x0002) {
    const vr = file.toString("latin1", pos + 4, pos + 6);
    const long = ["OB", "OW", "SQ", "UN", "UT"].includes(vr);
    const len = long ? file.readUInt32LE(pos + 8) : file.readUInt16LE(pos + 6);
    pos += (long ? 12 : 8) + len;
  }
  return pos;
}

/** Re-wrap an explicit VR little endian file as Deflated Explicit VR Little Endian. */
export function toDeflated(file: Buffer, sopClassUid: string, sopInstanceUid: string): Buffer {
  const dataset = file.subarray(metaEnd(file));
  const deflated = deflateRawSync(dataset);
  const meta = buildPart10Header({
    sopClassUid,
    sopInstanceUid,
    transferSyntaxUid: "1.2.840.10008.1.2.1.99",
  });
  return Buffer.concat([meta, deflated, deflated.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

/**
 * Re-wrap an explicit VR little endian file with encapsulated (compressed-looking) pixel data under the
 * given transfer syntax: PixelData becomes OB of undefined length with an empty offset table and one
 * fragment holding the original pixel bytes.
 */
export function toEncapsulated(
  file: Buffer,
  sopClassUid: string,
  sopInstanceUid: string,
  ts: string,
): Buffer {
  const start = metaEnd(file);
  const ds = dicomParser.parseDicom(new Uint8Array(file), { untilTag: "x7fe00010" });
  const pixel = ds.elements["x7fe00010"];
  if (!pixel) throw new Error("no pixel data");
  const headerAt = pixel.dataOffset - 12;
  const pixels = file.subarray(pixel.dataOffset, pixel.dataOffset + pixel.length);
  const head = Buffer.alloc(12);
  head.writeUInt16LE(0x7fe0, 0);
  head.writeUInt16LE(0x0010, 2);
  head.write("OB", 4, "latin1");
  head.writeUInt32LE(0xffffffff, 8);
  const item = (len: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(0xfffe, 0);
    b.writeUInt16LE(0xe000, 2);
    b.writeUInt32LE(len, 4);
    return b;
  };
  const delimiter = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  const meta = buildPart10Header({ sopClassUid, sopInstanceUid, transferSyntaxUid: ts });
  return Buffer.concat([
    meta,
    file.subarray(start, headerAt),
    head,
    item(0),
    item(pixels.length),
    pixels,
    delimiter,
  ]);
}

/** The complete encoded bytes (header + value) of a top-level element, found with dicom-parser. */
export function elementBytes(file: Buffer, tag: string): Buffer {
  const ds = dicomParser.parseDicom(new Uint8Array(file));
  const e = ds.elements[`x${tag.toLowerCase()}`];
  if (!e) throw new Error(`no element ${tag}`);
  const explicit = e.vr !== undefined;
  const long =
    explicit &&
    ["OB", "OW", "SQ", "UN", "UT", "OF", "OD", "OL", "UC", "UR", "OV", "SV", "UV"].includes(e.vr!);
  const headerLength = !explicit ? 8 : long ? 12 : 8;
  return file.subarray(e.dataOffset - headerLength, e.dataOffset + e.length);
}

/** Pixel data bytes of a file (top level, native). */
export function pixelBytes(file: Buffer): Buffer {
  const ds = dicomParser.parseDicom(new Uint8Array(file));
  const e = ds.elements["x7fe00010"];
  if (!e) throw new Error("no pixel data");
  return file.subarray(e.dataOffset, e.dataOffset + e.length);
}

export function readFile(file: string): Buffer {
  return readFileSync(file);
}

/** Set elements with dcmodify (in place); values as "(gggg,eeee)=value". */
export function dcmodify(file: string, ...assignments: string[]): void {
  execFileSync("dcmodify", ["-nb", "-nrc", ...assignments.flatMap((a) => ["-m", a]), file], {
    stdio: "pipe",
  });
}
