import { compilePythonRegex } from "./pyregex.js";
import type { CompiledEntry, Operator } from "./rules.js";
import type { Resolved } from "./tagpath.js";
import { pyStr, toNumber, toNumberList } from "./values.js";

/**
 * true/false before negation, or a reason why the values cannot be compared (the entry then fails).
 * Reasons never quote values: explain() shows them separately, redacted where needed.
 */
export type OpResult = boolean | string;

export interface OpInput {
  actual: Resolved;
  /** The rule value, or the value of the tag it names. */
  expected: unknown;
  /** expected came from another tag, so nothing of it was pre-compiled. */
  fromRef: boolean;
  entry: CompiledEntry;
}

function regexp({ actual, expected, fromRef, entry }: OpInput): OpResult {
  let pattern = entry.expected.regex;
  if (fromRef || !pattern) {
    try {
      pattern = compilePythonRegex(pyStr(expected));
    } catch {
      return "the value of the tag named by the rule is not a valid regular expression";
    }
  }
  return pattern.test(pyStr(actual.value));
}

function numeric(compare: (tag: number, value: number) => boolean) {
  return ({ actual, expected }: OpInput): OpResult => {
    const tag = toNumber(actual.value);
    const value = toNumber(expected);
    if (tag === undefined) return "the tag value is not a single number";
    if (value === undefined) return "the rule value is not a number";
    return compare(tag, value);
  };
}

/** Substring for text, exact membership for lists (ImageType contains ORIGINAL, ClassifyType contains axial). */
function contains({ actual, expected }: OpInput): OpResult {
  const needle = typeof expected === "number" ? String(expected) : expected;
  if (typeof needle !== "string") return "contains needs a single rule value";
  const v = actual.value;
  if (typeof v === "string") return v.includes(needle);
  if (Array.isArray(v)) return v.some((el) => (typeof el === "number" ? String(el) : el) === needle);
  return `contains cannot look inside ${typeof v === "number" ? "a number" : "this value"}`;
}

/** Every element within approxLevel; a scalar is a list of one. Lists of different length fail. */
function approx({ actual, expected, fromRef, entry }: OpInput): OpResult {
  const tag = toNumberList(actual.value);
  const value = fromRef ? toNumberList(expected) : entry.expected.numbers;
  if (tag === undefined) return "the tag value is not a number list";
  if (value === undefined) return "the rule value is not a number list";
  if (tag.length !== value.length) return `tag has ${tag.length} numbers, rule has ${value.length}`;
  return tag.every((t, i) => Math.abs(t - value[i]!) <= entry.approxLevel);
}

export const OPERATOR_FUNCTIONS: Record<Operator, (input: OpInput) => OpResult> = {
  regexp,
  "==": numeric((t, v) => t === v),
  "!=": numeric((t, v) => t !== v),
  "<": numeric((t, v) => t < v),
  ">": numeric((t, v) => t > v),
  contains,
  exist: ({ actual }) => actual.present,
  notexist: ({ actual }) => !actual.present,
  approx,
};
