/**
 * Value helpers that reproduce what the original (Python) rule engine saw: str() of a value for regexp,
 * float() for numeric operators, and number lists for approx.
 */

/** Python str(): lists print as "['A', 'B']" or "[0, 256, 256, 0]", so old regexps still match. */
export function pyStr(value: unknown): string {
  return typeof value === "string" ? value : pyRepr(value);
}

function pyRepr(value: unknown): string {
  if (typeof value === "string") return quote(value);
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null || value === undefined) return "None";
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value).map(([k, v]) => `${quote(k)}: ${pyRepr(v)}`);
    return `{${items.join(", ")}}`;
  }
  return String(value);
}

function quote(s: string): string {
  const escaped = s.replace(/\\/g, "\\\\");
  if (s.includes("'") && !s.includes('"')) return `"${escaped}"`;
  return `'${escaped.replace(/'/g, "\\'")}'`;
}

const FLOAT_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Python float() on a scalar: numbers and numeric strings (surrounding blanks allowed); otherwise undefined. */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string") return undefined;
  const s = value.trim();
  return FLOAT_RE.test(s) ? Number(s) : undefined;
}

/**
 * A number list for approx: a number, an array of numbers or numeric strings, or a string such as
 * "[1, 0, 0, 0, 1, 0]", "1,0,0" or "1\0\0" (DICOM multi-value). Undefined when any element is not a number.
 */
export function toNumberList(value: unknown): number[] | undefined {
  let parts: unknown[];
  if (Array.isArray(value)) parts = value;
  else if (typeof value === "string") {
    const inner = value.trim().replace(/^\[(.*)\]$/s, "$1");
    if (inner.trim() === "") return undefined;
    parts = inner.split(/[\\,]/);
  } else parts = [value];
  const numbers = parts.map(toNumber);
  return numbers.every((n): n is number => n !== undefined) ? numbers : undefined;
}

/** Cut long values for display. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
