import { promises as fs } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { DicomParseError, readHeaderFile } from "../dicom/header.js";
import { isPart10 } from "../dicom/part10.js";
import { isValidUid } from "../dicom/uid.js";

/** UIDs of the pseudonymized input, to check results against. */
export interface InputUids {
  studies: Set<string>;
  series: Set<string>;
  instances: Set<string>;
}

export interface OutputFile {
  file: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

export interface OutputCheck {
  dicom: OutputFile[];
  /** Files that are not DICOM (kept in the job folder, not sent). */
  other: string[];
  /** One line per problem; empty when every DICOM file is acceptable. */
  problems: string[];
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

async function looksLikeDicom(file: string): Promise<boolean> {
  const fh = await fs.open(file, "r");
  try {
    const buf = Buffer.alloc(132);
    const { bytesRead } = await fh.read(buf, 0, 132, 0);
    return isPart10(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/**
 * Check the algorithm's output DICOM (Part-10 files anywhere under output/): each must belong to a
 * StudyInstanceUID of the (pseudonymized) input, with a SeriesInstanceUID and SOPInstanceUID that are
 * not in the input, and no SOPInstanceUID twice.
 */
export async function checkOutput(outputDir: string, input: InputUids): Promise<OutputCheck> {
  const check: OutputCheck = { dicom: [], other: [], problems: [] };
  const seenSop = new Map<string, string>();
  for (const file of await walk(outputDir)) {
    const rel = path.relative(outputDir, file);
    if (rel === "output.json") continue;
    if (!(await looksLikeDicom(file))) {
      check.other.push(rel);
      continue;
    }
    let h;
    try {
      h = await readHeaderFile(file);
    } catch (e) {
      if (!(e instanceof DicomParseError)) throw e;
      check.problems.push(`${rel}: not readable as DICOM (${e.message})`);
      continue;
    }
    const study = h.string("StudyInstanceUID") ?? "";
    const series = h.string("SeriesInstanceUID") ?? "";
    const sop = h.string("SOPInstanceUID") ?? "";
    const before = check.problems.length;
    for (const [what, v] of [
      ["StudyInstanceUID", study],
      ["SeriesInstanceUID", series],
      ["SOPInstanceUID", sop],
    ] as const)
      if (!isValidUid(v))
        check.problems.push(`${rel}: ${what} ${v ? `"${v}" is not a valid UID` : "is missing"}`);
    if (check.problems.length > before) continue;
    if (!input.studies.has(study))
      check.problems.push(
        `${rel}: StudyInstanceUID ${study} is not the StudyInstanceUID of the input (results must keep the pseudonymized input study's UID)`,
      );
    if (input.series.has(series))
      check.problems.push(
        `${rel}: SeriesInstanceUID ${series} is an input series (results need a new SeriesInstanceUID)`,
      );
    if (input.instances.has(sop))
      check.problems.push(
        `${rel}: SOPInstanceUID ${sop} is an input instance (results need new SOPInstanceUIDs)`,
      );
    const twice = seenSop.get(sop);
    if (twice) check.problems.push(`${rel}: SOPInstanceUID ${sop} is also used by ${twice}`);
    seenSop.set(sop, rel);
    check.dicom.push({ file, studyInstanceUid: study, seriesInstanceUid: series, sopInstanceUid: sop });
  }
  return check;
}

/** One output.json entry; the original's key spellings (record_id, event_name, redcap_event_name, field_name) are accepted. */
const outputRow = z
  .object({
    record_id: z.union([z.string(), z.number()]).optional(),
    record: z.union([z.string(), z.number()]).optional(),
    event_name: z.string().optional(),
    redcap_event_name: z.string().optional(),
    event: z.string().optional(),
    field_name: z.string().min(1).optional(),
    field: z.string().min(1).optional(),
    value: z.union([z.string(), z.number(), z.boolean(), z.null()]),
  })
  .passthrough();

export interface ResultRow {
  record: string;
  event?: string;
  field: string;
  value: string;
}

export class OutputJsonError extends Error {}

/** Read output/output.json (absent = no rows). Throws OutputJsonError with a clear message when malformed. */
export async function readOutputJson(outputDir: string): Promise<ResultRow[]> {
  let text: string;
  try {
    text = await fs.readFile(path.join(outputDir, "output.json"), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new OutputJsonError(`output.json is not JSON: ${(e as Error).message}`);
  }
  const list = Array.isArray(json) ? json : [json];
  return list.map((raw, i) => {
    const r = outputRow.safeParse(raw);
    if (!r.success)
      throw new OutputJsonError(`output.json entry ${i}: ${r.error.issues[0]?.message ?? "invalid"}`);
    const record = r.data.record_id ?? r.data.record;
    const field = r.data.field_name ?? r.data.field;
    if (record === undefined || String(record) === "")
      throw new OutputJsonError(`output.json entry ${i}: record_id is missing`);
    if (!field) throw new OutputJsonError(`output.json entry ${i}: field_name is missing`);
    if (!/^[a-z][a-z0-9_]*$/.test(field))
      throw new OutputJsonError(`output.json entry ${i}: "${field}" is not a REDCap field name`);
    const event = r.data.redcap_event_name ?? r.data.event_name ?? r.data.event;
    const v = r.data.value;
    return {
      record: String(record),
      ...(event ? { event } : {}),
      field,
      value: v === null ? "" : typeof v === "boolean" ? (v ? "1" : "0") : String(v),
    };
  });
}

/** Flat REDCap import rows: one per record and event, fields merged. */
export function toImportRows(rows: ResultRow[], recordIdField: string): Array<Record<string, string>> {
  const merged = new Map<string, Record<string, string>>();
  for (const r of rows) {
    const key = `${r.record}\u0000${r.event ?? ""}`;
    let row = merged.get(key);
    if (!row) {
      row = { [recordIdField]: r.record, ...(r.event ? { redcap_event_name: r.event } : {}) };
      merged.set(key, row);
    }
    row[r.field] = r.value;
  }
  return [...merged.values()];
}
