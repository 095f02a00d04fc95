/**
 * Coupling lists (FIONA's CouplingList), pure CSV parsing.
 *
 * The file a user uploads has the header `AccessionNumber,ProjectName,subjectid,eventname` and an
 * optional `StudyInstanceUID` column: each row sends the study with that accession number (or that
 * StudyInstanceUID) to a project as a participant, at an event. Header names are matched without regard
 * to case, blanks and underscores, in any order, and the REDCap export names (cl_accessionnumber …) are
 * accepted too. `eventname` may be left out; AccessionNumber may be left out when StudyInstanceUID is given.
 *
 * CSV: RFC 4180 quoting ("" inside quotes), a UTF-8 byte-order mark, CRLF, LF or CR line ends, blank
 * lines skipped, values trimmed; the separator is a comma, or a semicolon or tab when the header uses
 * that instead (spreadsheets in many locales write semicolons). Errors carry the line number of the row.
 */
import { isPathSafeUid } from "../dicom/uid.js";
import type { ProjectConfig } from "../config/schema.js";
import { InvalidRequestError, validateRequest } from "../transfer/request.js";

export interface CouplingRow {
  /** Line of the row in the file (1-based), for messages. */
  line: number;
  accessionNumber?: string;
  studyInstanceUid?: string;
  project: string;
  participant: string;
  event?: string;
}

export interface CsvError {
  line: number;
  column?: string;
  message: string;
}

export interface CouplingParseResult {
  rows: CouplingRow[];
  errors: CsvError[];
}

export interface CsvRecord {
  line: number;
  fields: string[];
}

const MAX_COUPLING_ROWS = 50_000;

/** Split CSV text into records (fields untrimmed); errors for unterminated quotes and stray characters. */
export function parseCsv(text: string, delimiter?: string): { records: CsvRecord[]; errors: CsvError[] } {
  const src = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const sep = delimiter ?? detectDelimiter(src);
  const records: CsvRecord[] = [];
  const errors: CsvError[] = [];
  let line = 1;
  let i = 0;
  while (i < src.length) {
    const start = line;
    const fields: string[] = [];
    let field = "";
    let bad = false;
    for (;;) {
      // One field.
      let j = i;
      while (src[j] === " " || (src[j] === "\t" && sep !== "\t")) j++;
      if (src[j] === '"') {
        i = j + 1;
        let closed = false;
        while (i < src.length) {
          const c = src[i]!;
          if (c === '"') {
            if (src[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            closed = true;
            i++;
            break;
          }
          if (c === "\n" || (c === "\r" && src[i + 1] !== "\n")) line++;
          field += c;
          i++;
        }
        if (!closed) {
          errors.push({ line: start, message: 'a quoted value is not closed (missing ")' });
          return { records, errors };
        }
        while (src[i] === " " || (src[i] === "\t" && sep !== "\t")) i++;
        if (i < src.length && src[i] !== sep && src[i] !== "\n" && src[i] !== "\r") {
          if (!bad)
            errors.push({ line, message: 'unexpected text after a closing quote (write "" for a quote)' });
          bad = true;
          while (i < src.length && src[i] !== sep && src[i] !== "\n" && src[i] !== "\r") i++;
        }
      } else {
        while (i < src.length && src[i] !== sep && src[i] !== "\n" && src[i] !== "\r") {
          if (src[i] === '"' && !bad) {
            errors.push({ line, message: "a quote inside an unquoted value (quote the whole value)" });
            bad = true;
          }
          field += src[i];
          i++;
        }
      }
      fields.push(field);
      field = "";
      if (src[i] === sep) {
        i++;
        continue;
      }
      // End of record: a line end or the end of the text.
      if (src[i] === "\r") i++;
      if (src[i] === "\n") i++;
      line++;
      break;
    }
    if (!bad) records.push({ line: start, fields });
  }
  return { records, errors };
}

function detectDelimiter(src: string): string {
  const first = src.split(/\r\n|\n|\r/).find((l) => l.trim() !== "") ?? "";
  const count = (c: string) => first.split(c).length - 1;
  const best = [",", ";", "\t"].map((c) => [c, count(c)] as const).sort((a, b) => b[1] - a[1])[0]!;
  return best[1] > 0 ? best[0] : ",";
}

type Column = "accessionNumber" | "project" | "participant" | "event" | "studyInstanceUid";

/** Normalised header name -> column. */
const HEADER: Record<string, Column> = {
  accessionnumber: "accessionNumber",
  accession: "accessionNumber",
  projectname: "project",
  project: "project",
  subjectid: "participant",
  eventname: "event",
  studyinstanceuid: "studyInstanceUid",
};
const DISPLAY: Record<Column, string> = {
  accessionNumber: "AccessionNumber",
  project: "ProjectName",
  participant: "subjectid",
  event: "eventname",
  studyInstanceUid: "StudyInstanceUID",
};

const normaliseHeader = (h: string) =>
  h
    .trim()
    .toLowerCase()
    .replace(/[\s_-]/g, "")
    .replace(/^cl(?=accessionnumber|projectname|subjectid|eventname|studyinstanceuid)/, "");

/** A placeholder UID for validating rows that name only an accession number. */
const PLACEHOLDER_UID = "1.2.3";

/**
 * Parse and validate a coupling list against the configured projects. Rows are returned even when
 * other rows have errors; the caller decides (the upload stores nothing when there is any error).
 */
export function parseCouplingCsv(text: string, projects: readonly ProjectConfig[]): CouplingParseResult {
  const { records, errors } = parseCsv(text);
  const nonBlank = records.filter((r) => r.fields.some((f) => f.trim() !== ""));
  const header = nonBlank[0];
  if (!header) {
    errors.push({
      line: 1,
      message: "the file is empty: expected the header AccessionNumber,ProjectName,subjectid,eventname",
    });
    return { rows: [], errors };
  }
  const columns: Array<Column | undefined> = [];
  const headerErrors: CsvError[] = [];
  header.fields.forEach((raw, idx) => {
    const name = raw.trim();
    const col = HEADER[normaliseHeader(name)];
    if (name === "" && header.fields.slice(idx).every((f) => f.trim() === "")) {
      columns.push(undefined); // trailing empty header cells (a spreadsheet's trailing separators)
      return;
    }
    if (!col) {
      headerErrors.push({
        line: header.line,
        column: name,
        message: `unknown column "${name}" (expected AccessionNumber, ProjectName, subjectid, eventname, StudyInstanceUID)`,
      });
    } else if (columns.includes(col)) {
      headerErrors.push({ line: header.line, column: name, message: `column ${DISPLAY[col]} appears twice` });
    }
    columns.push(col);
  });
  for (const required of ["project", "participant"] as const) {
    if (!columns.includes(required)) {
      headerErrors.push({ line: header.line, message: `the header has no ${DISPLAY[required]} column` });
    }
  }
  if (!columns.includes("accessionNumber") && !columns.includes("studyInstanceUid")) {
    headerErrors.push({
      line: header.line,
      message: "the header needs an AccessionNumber or a StudyInstanceUID column",
    });
  }
  if (headerErrors.length) return { rows: [], errors: [...errors, ...headerErrors] };

  const rows: CouplingRow[] = [];
  const seen = new Set<string>();
  const body = nonBlank.slice(1);
  if (body.length > MAX_COUPLING_ROWS) {
    errors.push({
      line: body[MAX_COUPLING_ROWS]!.line,
      message: `more than ${MAX_COUPLING_ROWS} rows; split the list`,
    });
    return { rows: [], errors };
  }
  for (const rec of body) {
    const value: Partial<Record<Column, string>> = {};
    let rowOk = true;
    const fail = (message: string, col?: Column) => {
      errors.push({ line: rec.line, ...(col ? { column: DISPLAY[col] } : {}), message });
      rowOk = false;
    };
    rec.fields.forEach((f, idx) => {
      const col = columns[idx];
      const v = f.trim();
      if (col) value[col] = v;
      else if (v !== "")
        fail(
          `row has ${rec.fields.length} values but the header has ${columns.filter(Boolean).length} columns`,
        );
    });
    const project = value.project ?? "";
    const participant = value.participant ?? "";
    const accessionNumber = value.accessionNumber || undefined;
    const studyInstanceUid = value.studyInstanceUid || undefined;
    const event = value.event || undefined;
    if (!accessionNumber && !studyInstanceUid)
      fail("neither AccessionNumber nor StudyInstanceUID is given", "accessionNumber");
    if (accessionNumber !== undefined && !/^[\x20-\x5b\x5d-\x7e]{1,64}$/.test(accessionNumber)) {
      fail("AccessionNumber must be 1-64 printable ASCII characters without backslash", "accessionNumber");
    }
    if (studyInstanceUid !== undefined && !isPathSafeUid(studyInstanceUid)) {
      fail("StudyInstanceUID is not a valid UID", "studyInstanceUid");
    }
    if (!project) fail("ProjectName is empty", "project");
    else if (!projects.some((p) => p.name === project)) fail(`unknown project ${project}`, "project");
    else if (!participant) fail("subjectid is empty", "participant");
    else {
      try {
        validateRequest(
          {
            studyInstanceUid:
              studyInstanceUid && isPathSafeUid(studyInstanceUid) ? studyInstanceUid : PLACEHOLDER_UID,
            project,
            participant,
            ...(event !== undefined ? { event } : {}),
            requestedBy: "coupling",
          },
          projects,
        );
      } catch (e) {
        if (!(e instanceof InvalidRequestError)) throw e;
        fail(e.message, e.message.startsWith("event") ? "event" : "participant");
      }
    }
    if (!rowOk) continue;
    const key = [accessionNumber ?? "", studyInstanceUid ?? "", project, participant, event ?? ""].join("\0");
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({
      line: rec.line,
      ...(accessionNumber !== undefined ? { accessionNumber } : {}),
      ...(studyInstanceUid !== undefined ? { studyInstanceUid } : {}),
      project,
      participant,
      ...(event !== undefined ? { event } : {}),
    });
  }
  errors.sort((a, b) => a.line - b.line);
  return { rows, errors };
}
