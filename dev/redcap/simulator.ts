/**
 * A REDCap API simulator over real HTTP, for the tests and `fiona dev redcap`. It behaves like REDCap
 * 15.x for what src/redcap/client.ts uses: POST /api/ only,
 * form-encoded bodies with PHP arrays (name[0]=…), per-project tokens (403), content=record export
 * (flat, raw|label, fields/forms/records/events, filterLogic subset, dateRangeBegin), all-or-nothing
 * import with REDCap's error texts and counts, delete, metadata, event, generateNextRecordName, version,
 * and the per-IP rate limiter that bans an IP for good (429, plain text) above `banThreshold` calls in
 * a sliding minute. Faults can be injected (5xx, HTML 200, slow answers).
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type Request, type Response } from "express";

export type { RedcapFieldDef as SimField } from "../../src/redcap/fields.js";
import type { RedcapFieldDef as SimField } from "../../src/redcap/fields.js";

export interface SimEvent {
  unique_event_name: string;
  event_name: string;
  arm_num: number;
  forms: string[];
}

export interface SimProjectDef {
  name: string;
  token: string;
  /** The first field is the record-ID field. */
  fields: SimField[];
  /** Repeating instruments (form names). */
  repeating?: string[];
  /** Longitudinal projects only. */
  events?: SimEvent[];
}

type Values = Record<string, string>;
interface StoredRecord {
  /** Key: event \0 instrument \0 instance ("" instrument and instance for base rows). */
  rows: Map<string, Values>;
  modified: number;
}

export interface SimFault {
  /** HTTP status to answer with (500, 502, 503 …) or "html200" (an HTML error page with status 200) or "delay". */
  kind: number | "html200" | "delay";
  body?: string;
  delayMs?: number;
  /** How many calls this fault applies to (default 1). */
  times?: number;
}

const PSEUDO = [
  "redcap_event_name",
  "redcap_repeat_instrument",
  "redcap_repeat_instance",
  "redcap_data_access_group",
];
const rowKey = (event: string, instrument: string, instance: number | "") =>
  `${event}\0${instrument}\0${instance}`;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const bad = (m: string) => new HttpError(400, m);

function choices(f: SimField): Array<[string, string]> {
  if (f.field_type === "yesno")
    return [
      ["1", "Yes"],
      ["0", "No"],
    ];
  if (f.field_type === "truefalse")
    return [
      ["1", "True"],
      ["0", "False"],
    ];
  return (f.select_choices_or_calculations ?? "")
    .split("|")
    .map((c) => c.trim())
    .filter(Boolean)
    .map((c) => {
      const i = c.indexOf(",");
      return [c.slice(0, i).trim(), c.slice(i + 1).trim()] as [string, string];
    });
}

const checkboxColumn = (f: string, code: string) =>
  `${f}___${code
    .toLowerCase()
    .replace(/[-.]/g, "_")
    .replace(/[^a-z0-9_]/g, "")}`;

/** One simulated REDCap project: definition plus data. */
export class SimProject {
  readonly records = new Map<string, StoredRecord>();
  readonly recordIdField: string;
  readonly forms: string[];
  constructor(readonly def: SimProjectDef) {
    this.recordIdField = def.fields[0]!.field_name;
    this.forms = [...new Set(def.fields.map((f) => f.form_name))];
  }
  get longitudinal() {
    return !!this.def.events?.length;
  }
  get hasRepeating() {
    return !!this.def.repeating?.length;
  }
  field(name: string) {
    return this.def.fields.find((f) => f.field_name === name);
  }
  isRepeating(form: string) {
    return !!this.def.repeating?.includes(form);
  }
  eventNames() {
    return this.longitudinal ? this.def.events!.map((e) => e.unique_event_name) : [""];
  }
  formOnEvent(form: string, event: string) {
    return (
      !this.longitudinal ||
      !!this.def.events!.find((e) => e.unique_event_name === event)?.forms.includes(form)
    );
  }
  /** Export column names of a field (checkbox expanded). */
  columns(f: SimField): string[] {
    if (f.field_type === "descriptive") return [];
    if (f.field_type === "checkbox") return choices(f).map(([c]) => checkboxColumn(f.field_name, c));
    return [f.field_name];
  }
  /** Import/export columns → owning field. */
  columnOwner(): Map<string, { field?: SimField; form: string; code?: string }> {
    const m = new Map<string, { field?: SimField; form: string; code?: string }>();
    for (const f of this.def.fields) {
      if (f.field_type === "checkbox")
        for (const [c] of choices(f))
          m.set(checkboxColumn(f.field_name, c), { field: f, form: f.form_name, code: c });
      else if (f.field_type !== "descriptive") m.set(f.field_name, { field: f, form: f.form_name });
    }
    for (const form of this.forms) m.set(`${form}_complete`, { form });
    return m;
  }
  /** Every stored row as flat values, sorted as REDCap exports them. */
  allRows(): Array<{
    record: string;
    event: string;
    instrument: string;
    instance: number | "";
    values: Values;
  }> {
    const out: Array<{
      record: string;
      event: string;
      instrument: string;
      instance: number | "";
      values: Values;
    }> = [];
    for (const record of this.sortedRecordNames()) {
      const r = this.records.get(record)!;
      for (const event of this.eventNames()) {
        const base = r.rows.get(rowKey(event, "", ""));
        if (base) out.push({ record, event, instrument: "", instance: "", values: base });
        for (const form of this.forms) {
          const inst = [...r.rows.entries()]
            .filter(([k]) => k.startsWith(`${event}\0${form}\0`))
            .map(([k, v]) => ({ instance: Number(k.split("\0")[2]), v }))
            .sort((a, b) => a.instance - b.instance);
          for (const { instance, v } of inst)
            out.push({ record, event, instrument: form, instance, values: v });
        }
      }
    }
    return out;
  }
  sortedRecordNames(): string[] {
    const names = [...this.records.keys()];
    const num = (s: string) => /^\d+$/.test(s);
    return [
      ...names.filter(num).sort((a, b) => Number(a) - Number(b)),
      ...names.filter((s) => !num(s)).sort(),
    ];
  }
  /** Find a record name case-insensitively, as REDCap does on import. */
  existingName(name: string): string | undefined {
    if (this.records.has(name)) return name;
    const l = name.toLowerCase();
    return [...this.records.keys()].find((k) => k.toLowerCase() === l);
  }
  /** Flat rows as the API exports them (raw), for test assertions. */
  exportAll(): Array<Record<string, string | number>> {
    return exportRows(this, {}, "raw");
  }
}

// ---------------------------------------------------------------------------------------------- filterLogic

type Tok =
  | { t: "var"; event?: string; name: string; code?: string }
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "op"; v: string }
  | { t: "lp" }
  | { t: "rp" };

function lex(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "[") {
      const parts: string[] = [];
      while (s[i] === "[") {
        const j = s.indexOf("]", i);
        if (j < 0) throw bad("An unknown error occurred. Please check your API parameters.");
        parts.push(s.slice(i + 1, j));
        i = j + 1;
      }
      const last = parts.length > 1 && /^\d+$/.test(parts.at(-1)!) ? parts.slice(0, -1) : parts;
      const ev = last.length > 1 ? last[0] : undefined;
      const raw = last.at(-1)!;
      const m = /^([a-z0-9_]+)(?:\(([^)]*)\))?$/i.exec(raw);
      if (!m) throw bad("An unknown error occurred. Please check your API parameters.");
      out.push({
        t: "var",
        name: m[1]!,
        ...(ev ? { event: ev } : {}),
        ...(m[2] !== undefined ? { code: m[2] } : {}),
      });
      continue;
    }
    if (c === '"' || c === "'") {
      const j = s.indexOf(c, i + 1);
      if (j < 0) throw bad("An unknown error occurred. Please check your API parameters.");
      out.push({ t: "str", v: s.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === "(") {
      out.push({ t: "lp" });
      i++;
      continue;
    }
    if (c === ")") {
      out.push({ t: "rp" });
      i++;
      continue;
    }
    const op = /^(<>|!=|<=|>=|==|=|<|>)/.exec(s.slice(i));
    if (op) {
      out.push({ t: "op", v: op[1] === "==" ? "=" : op[1] === "!=" ? "<>" : op[1]! });
      i += op[1]!.length;
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(s.slice(i));
    if (num) {
      out.push({ t: "num", v: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const word = /^(and|or|AND|OR)(?=[\s(])/.exec(s.slice(i));
    if (word) {
      out.push({ t: "op", v: word[1]!.toLowerCase() });
      i += word[1]!.length;
      continue;
    }
    throw bad("An unknown error occurred. Please check your API parameters.");
  }
  return out;
}

type Lookup = (v: Extract<Tok, { t: "var" }>) => string;
type Node = (get: Lookup) => boolean | string | number;

function parseLogic(s: string): Node {
  const toks = lex(s);
  let p = 0;
  const peek = () => toks[p];
  const orExpr = (): Node => {
    let l = andExpr();
    while (peek()?.t === "op" && (peek() as { v: string }).v === "or") {
      p++;
      const a = l,
        b = andExpr();
      l = (g) => !!a(g) || !!b(g);
    }
    return l;
  };
  const andExpr = (): Node => {
    let l = cmp();
    while (peek()?.t === "op" && (peek() as { v: string }).v === "and") {
      p++;
      const a = l,
        b = cmp();
      l = (g) => !!a(g) && !!b(g);
    }
    return l;
  };
  const cmp = (): Node => {
    const l = atom();
    const t = peek();
    if (t?.t === "op" && ["=", "<>", "<", "<=", ">", ">="].includes(t.v)) {
      p++;
      const r = atom();
      return (g) => compare(l(g), t.v, r(g));
    }
    return l;
  };
  const atom = (): Node => {
    const t = toks[p++];
    if (!t) throw bad("An unknown error occurred. Please check your API parameters.");
    if (t.t === "lp") {
      const e = orExpr();
      if (toks[p++]?.t !== "rp") throw bad("An unknown error occurred. Please check your API parameters.");
      return e;
    }
    if (t.t === "var") return (g) => g(t);
    if (t.t === "str" || t.t === "num") return () => t.v;
    throw bad("An unknown error occurred. Please check your API parameters.");
  };
  const e = orExpr();
  if (p !== toks.length) throw bad("An unknown error occurred. Please check your API parameters.");
  return e;
}

function compare(a: unknown, op: string, b: unknown): boolean {
  const sa = String(a),
    sb = String(b);
  const numeric = sa !== "" && sb !== "" && !isNaN(Number(sa)) && !isNaN(Number(sb));
  if (op === "=" || op === "<>") {
    const eq = numeric ? Number(sa) === Number(sb) : sa === sb;
    return op === "=" ? eq : !eq;
  }
  if (sa === "" || sb === "") return false;
  const x: number | string = numeric ? Number(sa) : sa;
  const y: number | string = numeric ? Number(sb) : sb;
  return op === "<" ? x < y : op === "<=" ? x <= y : op === ">" ? x > y : x >= y;
}

// ---------------------------------------------------------------------------------------------- export

interface ExportParams {
  fields?: string[];
  forms?: string[];
  records?: string[];
  events?: string[];
  filterLogic?: string;
  dateRangeBegin?: string;
}

function exportRows(
  proj: SimProject,
  q: ExportParams,
  rawOrLabel: string,
): Array<Record<string, string | number>> {
  const owners = proj.columnOwner();
  const validFieldNames = new Set([
    ...proj.def.fields.filter((f) => f.field_type !== "descriptive").map((f) => f.field_name),
    ...proj.forms.map((f) => `${f}_complete`),
  ]);
  if (q.fields?.length) {
    const badF = q.fields.filter((f) => !validFieldNames.has(f));
    if (badF.length)
      throw bad(
        `The following values in the parameter "fields" are not valid: ${badF.map((f) => `'${f}'`).join(", ")}`,
      );
  }
  if (q.forms?.length) {
    const badF = q.forms.filter((f) => !proj.forms.includes(f));
    if (badF.length)
      throw bad(
        `The following values in the parameter "forms" are not valid: ${badF.map((f) => `'${f}'`).join(", ")}`,
      );
  }
  if (q.events?.length && proj.longitudinal) {
    const badE = q.events.filter((e) => !proj.eventNames().includes(e));
    if (badE.length)
      throw bad(
        `The following values in the parameter "events" are not valid: ${badE.map((e) => `'${e}'`).join(", ")}`,
      );
  }
  const selecting = !!(q.fields?.length || q.forms?.length);
  const wanted = new Set<string>();
  for (const f of proj.def.fields) {
    if (f.field_type === "descriptive") continue;
    if (!selecting || q.fields?.includes(f.field_name) || q.forms?.includes(f.form_name))
      wanted.add(f.field_name);
  }
  const withIdColumns = !selecting || wanted.has(proj.recordIdField);
  const columns: string[] = [];
  if (withIdColumns) {
    columns.push(proj.recordIdField);
    if (proj.longitudinal) columns.push("redcap_event_name");
    if (proj.hasRepeating) columns.push("redcap_repeat_instrument", "redcap_repeat_instance");
  }
  for (const form of proj.forms) {
    for (const f of proj.def.fields.filter((x) => x.form_name === form)) {
      if (!wanted.has(f.field_name) || (withIdColumns && f.field_name === proj.recordIdField)) continue;
      columns.push(...proj.columns(f));
    }
    if (!selecting || q.forms?.includes(form) || q.fields?.includes(`${form}_complete`))
      columns.push(`${form}_complete`);
  }
  const logic = q.filterLogic?.trim() ? parseLogic(q.filterLogic) : undefined;
  let since: number | undefined;
  if (q.dateRangeBegin) {
    const d = new Date(q.dateRangeBegin.replace(" ", "T"));
    if (isNaN(d.getTime())) throw bad('The value of the parameter "dateRangeBegin" is not valid');
    since = d.getTime();
  }
  const recordFilter = q.records?.length
    ? new Set(q.records.map((r) => proj.existingName(r)).filter(Boolean))
    : undefined;
  const out: Array<Record<string, string | number>> = [];
  const all = proj.allRows();
  for (const row of all) {
    if (recordFilter && !recordFilter.has(row.record)) continue;
    if (since !== undefined && proj.records.get(row.record)!.modified < since) continue;
    if (q.events?.length && proj.longitudinal && !q.events.includes(row.event)) continue;
    const rec = proj.records.get(row.record)!;
    const valueOf = (col: string, event: string): string => {
      const o = owners.get(col);
      if (!o) return "";
      // Fields of this row's instrument come from the row; non-repeating fields from the event's base row.
      if (row.instrument && o.form === row.instrument && event === row.event) return row.values[col] ?? "";
      if (!proj.isRepeating(o.form)) return rec.rows.get(rowKey(event, "", ""))?.[col] ?? "";
      return "";
    };
    if (logic) {
      const ok = logic((v) => {
        const event = v.event ?? row.event;
        if (v.name === proj.recordIdField) return row.record;
        if (v.name === "redcap_repeat_instrument") return row.instrument;
        if (v.name === "redcap_repeat_instance") return String(row.instance);
        if (v.code !== undefined) return valueOf(checkboxColumn(v.name, v.code), event);
        return valueOf(v.name, event);
      });
      if (!ok) continue;
    }
    const o: Record<string, string | number> = {};
    for (const col of columns) {
      if (col === proj.recordIdField) o[col] = row.record;
      else if (col === "redcap_event_name") o[col] = row.event;
      else if (col === "redcap_repeat_instrument") o[col] = row.instrument;
      else if (col === "redcap_repeat_instance") o[col] = row.instance;
      else {
        const own = owners.get(col)!;
        const onThisRow = row.instrument ? own.form === row.instrument : !proj.isRepeating(own.form);
        const designated = onThisRow && proj.formOnEvent(own.form, row.event);
        let v = row.values[col] ?? "";
        if (v === "" && designated && (own.code !== undefined || (col.endsWith("_complete") && !own.field)))
          v = "0";
        if (!onThisRow) v = "";
        o[col] = rawOrLabel === "label" ? label(own, col, v) : v;
      }
    }
    out.push(o);
  }
  return out;
}

function label(own: { field?: SimField; form: string; code?: string }, _col: string, v: string): string {
  if (v === "") return v;
  if (!own.field)
    return ({ "0": "Incomplete", "1": "Unverified", "2": "Complete" } as Record<string, string>)[v] ?? v;
  if (own.code !== undefined) return v === "1" ? "Checked" : "Unchecked";
  const t = own.field.field_type;
  if (t === "dropdown" || t === "radio" || t === "yesno" || t === "truefalse")
    return choices(own.field).find(([c]) => c === v)?.[1] ?? v;
  return v;
}

// ---------------------------------------------------------------------------------------------- import

const csvCell = (s: string) => (s === "" ? "" : `"${s.replace(/"/g, '""')}"`);

function validateValue(f: SimField, col: string, v: string, code?: string): string | undefined {
  if (v === "") return undefined;
  if (code !== undefined)
    return v === "0" || v === "1"
      ? undefined
      : `${col} is a checkbox field and thus can only have a value of '1' (checked) or '0' (unchecked).`;
  const t = f.field_type;
  if (t === "dropdown" || t === "radio" || t === "yesno" || t === "truefalse")
    return choices(f).some(([c]) => c === v)
      ? undefined
      : `The value is not a valid category for ${f.field_name}`;
  const val = f.text_validation_type_or_show_slider_number ?? "";
  if (val === "integer" && !/^-?\d+$/.test(v)) return `The value of ${f.field_name} must be an integer.`;
  if (val === "number" && isNaN(Number(v))) return `The value of ${f.field_name} must be numeric.`;
  if (val === "date_ymd" && !/^\d{4}-\d{2}-\d{2}$/.test(v))
    return "Invalid date format. (NOTE: Dates must be imported here only in Y-M-D format, regardless of the specific date format designated for this field.)";
  if (val.startsWith("datetime") && !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$/.test(v))
    return "Invalid date format. (NOTE: Dates must be imported here only in Y-M-D H:M[:S] format, regardless of the specific date format designated for this field.)";
  return undefined;
}

function importData(
  proj: SimProject,
  data: string,
  overwrite: boolean,
  returnContent: string,
  now: number,
): unknown {
  let rows: unknown;
  try {
    rows = JSON.parse(data);
  } catch {
    throw bad(
      "The data being imported is not formatted correctly. PHP error from JSON decoder: Syntax error. The JSON must be in an array, as in [{ ... }].",
    );
  }
  if (!Array.isArray(rows)) throw bad(`The record id field (${proj.recordIdField}) is missing.`);
  if (rows.length === 0) return returnContent === "ids" ? [] : { count: 0 };
  const owners = proj.columnOwner();
  const norm = (rows as unknown[]).map((r) => {
    if (!r || typeof r !== "object" || Array.isArray(r))
      throw bad(`The record id field (${proj.recordIdField}) is missing.`);
    return Object.fromEntries(
      Object.entries(r as Record<string, unknown>).map(([k, v]) => [
        k,
        v === null || v === false ? "" : v === true ? "1" : String(v),
      ]),
    );
  });
  const unknown = new Set<string>();
  for (const r of norm)
    for (const k of Object.keys(r)) if (!owners.has(k) && !PSEUDO.includes(k)) unknown.add(k);
  if (unknown.size)
    throw bad(
      `The following fields were not found in the project as real data fields: ${[...unknown].join(", ")}`,
    );
  if (
    !proj.hasRepeating &&
    norm.some((r) => "redcap_repeat_instrument" in r || "redcap_repeat_instance" in r)
  )
    throw bad(
      "ERROR: Trying to import repeat instance/instrument fields! The fields 'redcap_repeat_instrument' and 'redcap_repeat_instance' are reserved and cannot be imported into a project that has no repeating instruments or events.",
    );
  const errors: string[] = [];
  const plan: Array<{
    record: string;
    event: string;
    instrument: string;
    instance: number | "new" | "";
    values: Values;
  }> = [];
  for (const r of norm) {
    const record = (r[proj.recordIdField] ?? "").trim();
    if (!record) throw bad(`The record id field (${proj.recordIdField}) is missing.`);
    if (/[+&#'\n\r]/.test(record) || record.length > 100)
      throw bad(
        `The record name (${record}) cannot contain a plus sign (+), ampersand (&), pound sign (#), or apostrophe.`,
      );
    let event = "";
    if (proj.longitudinal) {
      event = r.redcap_event_name === undefined ? proj.eventNames()[0]! : r.redcap_event_name;
      if (event === "") throw bad("The record event name is missing.");
      if (!proj.eventNames().includes(event))
        throw bad(`The following values of redcap_event_name are invalid: ${event}`);
    }
    const instrument = r.redcap_repeat_instrument ?? "";
    const instRaw = r.redcap_repeat_instance ?? "";
    let instance: number | "new" | "" = "";
    if (instrument) {
      if (!proj.isRepeating(instrument))
        throw bad(
          `redcap_repeat_instrument must be the unique form name of a Repeating Instrument. The value '${instrument}' is not valid.`,
        );
      if (instRaw === "new") instance = "new";
      else if (/^\d+$/.test(instRaw) && Number(instRaw) >= 1 && Number(instRaw) <= 32767)
        instance = Number(instRaw);
      else
        throw bad(
          `The record name (${record}) has an invalid value for 'redcap_repeat_instance'. The value must either be a positive integer or the value 'new'. Value provided: ${instRaw}`,
        );
    } else if (instRaw !== "") {
      throw bad(
        `The record (${record}) cannot be imported. This is because the field 'redcap_repeat_instrument' could not be found in the data import fields or because it has a blank value.`,
      );
    }
    const values: Values = {};
    for (const [k, v] of Object.entries(r)) {
      if (PSEUDO.includes(k) || k === proj.recordIdField) continue;
      const o = owners.get(k)!;
      if (instrument ? o.form !== instrument : proj.isRepeating(o.form)) {
        errors.push(
          [
            record,
            k,
            v,
            instrument
              ? `This field is not on the repeating instrument '${instrument}'.`
              : `This field is on a repeating instrument, but 'redcap_repeat_instrument' is blank.`,
          ]
            .map(csvCell)
            .join(","),
        );
        continue;
      }
      if (!proj.formOnEvent(o.form, event)) {
        errors.push(
          [
            record,
            k,
            v,
            `This field ('${k}') exists on an instrument that is not designated for the event named '${event}'. You are not allowed to import data for this field into this event.`,
          ]
            .map(csvCell)
            .join(","),
        );
        continue;
      }
      const msg = o.field
        ? validateValue(o.field, k, v, o.code)
        : v === "" || ["0", "1", "2"].includes(v)
          ? undefined
          : `The value is not a valid category for ${k}`;
      if (msg) errors.push([record, k, v, msg].map(csvCell).join(","));
      values[k] = v;
    }
    plan.push({ record, event, instrument, instance, values });
  }
  if (errors.length) throw bad(errors.join("\n"));
  // Valid: apply all.
  const ids: string[] = [];
  for (const p of plan) {
    const name = proj.existingName(p.record) ?? p.record;
    if (!ids.includes(name)) ids.push(name);
    let rec = proj.records.get(name);
    if (!rec) {
      rec = { rows: new Map(), modified: now };
      proj.records.set(name, rec);
    }
    rec.modified = now;
    if (!rec.rows.has(rowKey(p.event || proj.eventNames()[0]!, "", "")) && !p.instrument)
      rec.rows.set(rowKey(p.event, "", ""), {});
    if (!proj.longitudinal && !rec.rows.has(rowKey("", "", ""))) rec.rows.set(rowKey("", "", ""), {});
    let instance: number | "" = "";
    if (p.instrument) {
      if (p.instance === "new") {
        const prefix = `${p.event}\0${p.instrument}\0`;
        instance =
          Math.max(
            0,
            ...[...rec.rows.keys()].filter((k) => k.startsWith(prefix)).map((k) => Number(k.split("\0")[2])),
          ) + 1;
      } else instance = p.instance as number;
    }
    const key = rowKey(p.event, p.instrument, instance);
    const stored = rec.rows.get(key) ?? {};
    for (const [k, v] of Object.entries(p.values)) {
      if (v === "" && !overwrite) continue;
      if (v === "" && owners.get(k)?.code !== undefined) stored[k] = "0";
      else if (v === "") delete stored[k];
      else stored[k] = v;
    }
    const forms = new Set(Object.keys(p.values).map((k) => owners.get(k)!.form));
    for (const f of forms) if (stored[`${f}_complete`] === undefined) stored[`${f}_complete`] = "0";
    rec.rows.set(key, stored);
  }
  if (returnContent === "ids") return ids;
  if (returnContent === "nothing") return "";
  return { count: ids.length };
}

// ---------------------------------------------------------------------------------------------- server

export interface RedcapSimulatorOptions {
  projects: SimProjectDef[];
  /** REDCap's "page hit threshold per minute" for one IP; above it the IP is banned for good. 0 = off. */
  banThreshold?: number;
  port?: number;
  host?: string;
}

export interface RedcapSimulator {
  url: string;
  port: number;
  project(name: string): SimProject;
  /** Every request received (after the ban check), with its time; for rate assertions. */
  readonly hits: number[];
  readonly bannedIps: Set<string>;
  /** The largest number of requests seen in any sliding 60 s window. */
  maxPerMinute(): number;
  inject(f: SimFault): void;
  /**
   * An outage until called again with undefined: every request is answered with this status (e.g. 500,
   * 503), or with "down" its connection is dropped without an answer (REDCap gone away).
   */
  outage(mode: number | "down" | undefined): void;
  /** Lift every ban (an administrator's action). */
  unban(): void;
  close(): Promise<void>;
}

/** Turn qs objects with numeric keys (PHP arrays beyond qs's arrayLimit) into arrays. */
function arr(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(String);
  if (v && typeof v === "object")
    return Object.entries(v as Record<string, unknown>)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([, x]) => String(x));
  return undefined;
}
/** Comma strings are accepted for export lists (not for delete). */
const list = (v: unknown) =>
  arr(v) ?? (typeof v === "string" && v !== "" ? v.split(",").map((s) => s.trim()) : undefined);
const str = (v: unknown) => (typeof v === "string" ? v : undefined);

export async function startRedcapSimulator(opts: RedcapSimulatorOptions): Promise<RedcapSimulator> {
  const projects = new Map(opts.projects.map((d) => [d.name, new SimProject(d)]));
  const byToken = new Map([...projects.values()].map((p) => [p.def.token.toUpperCase(), p]));
  const threshold = opts.banThreshold ?? 600;
  const hits: number[] = [];
  const perIp = new Map<string, number[]>();
  const bannedIps = new Set<string>();
  const faults: SimFault[] = [];
  let outage: number | "down" | undefined;

  const app = express();
  app.disable("x-powered-by");
  app.use(express.urlencoded({ extended: true, limit: "50mb", parameterLimit: 100_000 }));

  const send = (res: Response, status: number, body: unknown) => {
    res
      .status(status)
      .type("application/json; charset=utf-8")
      .send(typeof body === "string" ? body : JSON.stringify(body));
  };

  app.all(/.*/, async (req: Request, res: Response) => {
    const ip = req.socket.remoteAddress ?? "?";
    if (bannedIps.has(ip)) {
      res
        .status(429)
        .type("text/html; charset=utf-8")
        .send(`Your IP address (${ip}) has been banned due to suspected abuse.`);
      return;
    }
    const now = Date.now();
    hits.push(now);
    const mine = (perIp.get(ip) ?? []).filter((t) => t > now - 60_000);
    mine.push(now);
    perIp.set(ip, mine);
    if (threshold > 0 && mine.length > threshold) {
      bannedIps.add(ip);
      res
        .status(429)
        .type("text/html; charset=utf-8")
        .send(`Your IP address (${ip}) has been banned due to suspected abuse.`);
      return;
    }
    if (outage === "down") {
      req.socket.destroy();
      return;
    }
    if (outage !== undefined) {
      res.status(outage).type("text/html").send("<html><body><h1>Service Unavailable</h1></body></html>");
      return;
    }
    const fault = faults[0];
    if (fault) {
      if (--(fault as { times: number }).times <= 0) faults.shift();
      if (fault.kind === "delay") await new Promise((r) => setTimeout(r, fault.delayMs ?? 5000));
      else if (fault.kind === "html200") {
        res
          .status(200)
          .type("text/html")
          .send(fault.body ?? "<html><body><h1>CRITICAL ERROR: REDCap server is offline!</h1></body></html>");
        return;
      } else {
        res
          .status(fault.kind)
          .type("application/json")
          .send(fault.body ?? "");
        return;
      }
    }
    if (req.method !== "POST" || !/^\/api\/?$/.test(req.path)) {
      if (!/^\/api\/?$/.test(req.path)) {
        res
          .status(404)
          .type("text/html")
          .send("<html><body>The requested URL was not found on this server.</body></html>");
        return;
      }
      res
        .status(501)
        .type("text/xml")
        .send(
          '<?xml version="1.0" encoding="UTF-8" ?><hash><error>The requested method is not implemented.</error></hash>',
        );
      return;
    }
    const b = (req.body ?? {}) as Record<string, unknown>;
    const token = str(b.token) ?? "";
    const proj = /^[A-Za-z0-9]+$/.test(token) ? byToken.get(token.toUpperCase()) : undefined;
    if (!proj) return send(res, 403, { error: "You do not have permissions to use the API" });
    try {
      const content = str(b.content);
      const result = handle(proj, content, b, now);
      if (typeof result === "number" || typeof result === "string") {
        res.status(200).type("application/json; charset=utf-8").send(String(result));
        return;
      }
      send(res, 200, result);
    } catch (e) {
      if (e instanceof HttpError) return send(res, e.status, { error: e.message });
      return send(res, 400, { error: "An unknown error occurred. Please check your API parameters." });
    }
  });

  function handle(
    proj: SimProject,
    content: string | undefined,
    b: Record<string, unknown>,
    now: number,
  ): unknown {
    switch (content) {
      case "record": {
        if (str(b.action) === "delete") {
          const recs = arr(b.records);
          if (b.records !== undefined && !recs)
            throw bad(
              "Incorrect format for 'records' parameter. It must be passed as an array, even if it only contains a single record name.",
            );
          if (!recs?.length)
            throw bad(
              "The 'records' parameter is an empty array. You must provide at least one record name to delete.",
            );
          const missing = recs.filter((r) => !proj.existingName(r));
          if (missing.length)
            throw bad(
              `One or more of the records provided cannot be deleted because they do not exist in the project. The following records do not exist: ${missing.join(", ")}`,
            );
          for (const r of recs) proj.records.delete(proj.existingName(r)!);
          return recs.length;
        }
        if (b.data !== undefined)
          return importData(
            proj,
            str(b.data) ?? "",
            str(b.overwriteBehavior) === "overwrite",
            str(b.returnContent) ?? "count",
            now,
          );
        const q: ExportParams = {};
        const fields = list(b.fields),
          forms = list(b.forms),
          records = list(b.records),
          events = list(b.events);
        if (fields) q.fields = fields;
        if (forms) q.forms = forms;
        if (records) q.records = records;
        if (events) q.events = events;
        if (str(b.filterLogic)) q.filterLogic = str(b.filterLogic)!;
        if (str(b.dateRangeBegin)) q.dateRangeBegin = str(b.dateRangeBegin)!;
        return exportRows(proj, q, str(b.rawOrLabel) === "label" ? "label" : "raw");
      }
      case "metadata": {
        const fields = arr(b.fields),
          forms = arr(b.forms);
        return proj.def.fields
          .filter(
            (f) =>
              (!fields?.length && !forms?.length) ||
              fields?.includes(f.field_name) ||
              forms?.includes(f.form_name),
          )
          .map((f) => ({
            field_name: f.field_name,
            form_name: f.form_name,
            section_header: "",
            field_type: f.field_type,
            field_label: f.field_label ?? f.field_name,
            select_choices_or_calculations: f.select_choices_or_calculations ?? "",
            field_note: "",
            text_validation_type_or_show_slider_number: f.text_validation_type_or_show_slider_number ?? "",
            text_validation_min: "",
            text_validation_max: "",
            identifier: "",
            branching_logic: "",
            required_field: "",
            custom_alignment: "",
            question_number: "",
            matrix_group_name: "",
            matrix_ranking: "",
            field_annotation: "",
          }));
      }
      case "event":
        if (!proj.longitudinal) throw bad("You cannot export events for classic projects");
        return proj.def.events!.map((e, i) => ({
          event_name: e.event_name,
          arm_num: e.arm_num,
          unique_event_name: e.unique_event_name,
          custom_event_label: "",
          event_id: 40 + i,
        }));
      case "generateNextRecordName":
        return Math.max(0, ...[...proj.records.keys()].filter((k) => /^\d+$/.test(k)).map(Number)) + 1;
      case "version":
        return "15.7.6";
      default:
        throw bad('The value of the parameter "content" is not valid');
    }
  }

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}/api/`,
    port,
    hits,
    bannedIps,
    project(name) {
      const p = projects.get(name);
      if (!p) throw new Error(`no simulated project ${name}`);
      return p;
    },
    maxPerMinute() {
      let max = 0,
        j = 0;
      for (let i = 0; i < hits.length; i++) {
        while (hits[j]! <= hits[i]! - 60_000) j++;
        max = Math.max(max, i - j + 1);
      }
      return max;
    },
    outage(mode) {
      outage = mode;
    },
    inject(f) {
      faults.push({ times: 1, ...f });
    },
    unban() {
      bannedIps.clear();
      perIp.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
