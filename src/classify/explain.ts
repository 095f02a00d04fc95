import type { TagSource } from "../dicom/header.js";
import { applyDefinition, evaluateEntry } from "./evaluate.js";
import type { CompiledRules, Operator } from "./rules.js";
import { formatTagPath, type TagContext, type TagPath } from "./tagpath.js";
import { pyStr, truncate } from "./values.js";

export interface ExplainOptions {
  /** Replace values of patient-identifying tags by "<redacted>" (default true). */
  redactPhi?: boolean;
  /** Longer values are cut (default 120 characters). */
  maxValueLength?: number;
}

export interface EntryExplanation {
  tag: string;
  /** The tag's value as the operator saw it, "<absent>" when missing. */
  value: string;
  operator: Operator;
  negate: boolean;
  /** The rule value, or "<tag> = <its value>" when the rule value names another tag. */
  expected: string;
  pass: boolean;
  /** id of the definition the entry was copied from by a rule/notrule reference. */
  from?: string;
  /** Why the values could not be compared. */
  note?: string;
}

export interface DefinitionExplanation {
  index: number;
  type: string;
  id?: string;
  seriesLevel: boolean;
  matched: boolean;
  /** What this definition did to ClassifyType in this pass. */
  effect: "added" | "kept" | "removed" | "none";
  entries: EntryExplanation[];
}

export const REDACTED = "<redacted>";

const PHI_KEYWORDS = new Set([
  "PatientName",
  "PatientID",
  "PatientBirthDate",
  "PatientBirthTime",
  "AccessionNumber",
  "OtherPatientIDs",
  "OtherPatientNames",
  "OtherPatientIDsSequence",
  "PatientAddress",
  "PatientTelephoneNumbers",
  "PatientBirthName",
  "PatientMotherBirthName",
]);
/** Keywords that contain "Name" but never a person's name. */
const NOT_PERSON_NAMES = new Set([
  "InstitutionName",
  "InstitutionalDepartmentName",
  "StationName",
  "ManufacturerModelName",
  "SequenceName",
  "PulseSequenceName",
  "ProtocolName",
  "CodingSchemeName",
  "ReceiveCoilName",
  "TransmitCoilName",
]);
const PN_LIKE = /Name|Physician|Operator/;
/** PN elements by tag (group 0010 is patient data throughout). */
const PHI_TAGS = new Set([
  0x00080050, 0x00080090, 0x0008009c, 0x00081048, 0x00081050, 0x00081060, 0x00081070, 0x00321032,
]);

/** Does this path read patient-identifying data (explicit list, group 0010, or anything PN-looking)? */
export function isPhiTag(path: TagPath): boolean {
  if (path.kind === "name") {
    if (PHI_KEYWORDS.has(path.name)) return true;
    return PN_LIKE.test(path.name) && !NOT_PERSON_NAMES.has(path.name);
  }
  const [group, element] =
    path.kind === "tag" ? [path.group, path.element] : path.path[path.path.length - 1]!;
  return group === 0x0010 || PHI_TAGS.has(group * 0x10000 + element);
}

/**
 * Evaluate every entry of every definition (no short-circuit) for `fiona rules test`, in file order,
 * with what each definition did to ClassifyType. The resulting list is what classify() returns; it is
 * not simply the matched types (SeriesLevel removals and `previous` count).
 */
export function explain(
  rules: CompiledRules,
  series: Record<string, unknown>,
  ds: TagSource,
  previous: readonly string[],
  options: ExplainOptions = {},
): DefinitionExplanation[] {
  const redact = options.redactPhi ?? true;
  const max = options.maxValueLength ?? 120;
  const show = (path: TagPath, value: unknown) =>
    redact && isPhiTag(path) ? REDACTED : truncate(pyStr(value), max);

  const ctx: TagContext = { series, ds, previous };
  let types = [...previous];
  return rules.definitions.map((def): DefinitionExplanation => {
    const entries = def.entries.map((entry): EntryExplanation => {
      const out = evaluateEntry(entry, ctx);
      const expected = out.expectedTag
        ? `${formatTagPath(out.expectedTag)} = ${show(out.expectedTag, out.expected)}`
        : truncate(entry.expected.literal === undefined ? "" : pyStr(entry.expected.literal), max);
      return {
        tag: formatTagPath(entry.tag),
        value: out.actual.present ? show(entry.tag, out.actual.value) : "<absent>",
        operator: entry.operator,
        negate: entry.negate,
        expected,
        pass: out.pass,
        ...(entry.from !== undefined && { from: entry.from }),
        ...(out.note !== undefined && { note: out.note }),
      };
    });
    const matched = entries.every((e) => e.pass);
    const before = types.includes(def.type);
    types = applyDefinition(types, def, matched);
    const after = types.includes(def.type);
    const effect = before === after ? (after && matched ? "kept" : "none") : after ? "added" : "removed";
    return {
      index: def.index,
      type: def.type,
      id: def.id,
      seriesLevel: def.seriesLevel,
      matched,
      effect,
      entries,
    };
  });
}
