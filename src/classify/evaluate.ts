import type { TagSource } from "../dicom/header.js";
import { OPERATOR_FUNCTIONS } from "./operators.js";
import type { CompiledDefinition, CompiledEntry, CompiledRules } from "./rules.js";
import { resolveTag, type Resolved, type TagContext, type TagPath } from "./tagpath.js";

export interface EntryOutcome {
  pass: boolean;
  actual: Resolved;
  /** The value compared against: the literal, or the value of the tag the rule value names. */
  expected: unknown;
  /** Set when expected was read from another tag. */
  expectedTag?: TagPath;
  /** Why the values could not be compared (the entry then fails, whatever negate says). */
  note?: string;
}

export function evaluateEntry(entry: CompiledEntry, ctx: TagContext): EntryOutcome {
  const actual = resolveTag(entry.tag, ctx);
  const { ref, refRequired, literal } = entry.expected;
  let expected: unknown = literal;
  let expectedTag: TagPath | undefined;
  if (ref) {
    const r = resolveTag(ref, ctx);
    if (r.present) {
      expected = r.value;
      expectedTag = ref;
    } else if (refRequired) {
      return { pass: false, actual, expected: undefined, note: "the tag named by the rule value is absent" };
    }
  }
  const result = OPERATOR_FUNCTIONS[entry.operator]({
    actual,
    expected,
    fromRef: expectedTag !== undefined,
    entry,
  });
  if (typeof result === "string") return { pass: false, actual, expected, expectedTag, note: result };
  return { pass: result !== entry.negate, actual, expected, expectedTag };
}

/**
 * One definition's effect on the running ClassifyType list: a match adds its type once (keeping the
 * order of first addition); a failing SeriesLevel definition removes its type, even when another
 * definition of the same type matched earlier in this pass (the original's behaviour).
 */
export function applyDefinition(types: string[], def: CompiledDefinition, matched: boolean): string[] {
  if (matched) return types.includes(def.type) ? types : [...types, def.type];
  return def.seriesLevel ? types.filter((t) => t !== def.type) : types;
}

/**
 * Classify one received file: start from the series' ClassifyType as stored before this file
 * (`previous`) and apply every definition in file order. Rules on ["ClassifyType"] see `previous`,
 * not types added in this pass.
 */
export function classify(
  rules: CompiledRules,
  series: Record<string, unknown>,
  ds: TagSource,
  previous: readonly string[],
): string[] {
  const ctx: TagContext = { series, ds, previous };
  let types = [...previous];
  for (const def of rules.definitions) {
    const matched = def.entries.every((e) => evaluateEntry(e, ctx).pass);
    types = applyDefinition(types, def, matched);
  }
  return types;
}
