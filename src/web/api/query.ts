/**
 * Query parameter schemas that read values the way the API always has: the first of repeated values,
 * an empty value as absent, at most 256 characters; counts and flags fall back instead of failing.
 */
import { z } from "./zod.js";

const MAX_CHARS = 256;

function firstValue(v: unknown): string | undefined {
  const s = Array.isArray(v) ? (v as unknown[])[0] : v;
  return typeof s === "string" && s !== "" ? s.slice(0, MAX_CHARS) : undefined;
}

/**
 * `read` applied to the raw value. A query string never holds null; it is passed on for `inner` to
 * reject, or the document would call every parameter nullable.
 */
export const queryValue = <T extends z.ZodTypeAny>(read: (v: unknown) => unknown, inner: T) =>
  z.preprocess((v) => (v === null ? v : read(v)), inner);

export const text = (description: string) =>
  queryValue(firstValue, z.string().optional()).describe(description);

export const requiredText = (description: string) => queryValue(firstValue, z.string()).describe(description);

/** A count from 1 to `max`: larger values are capped, anything else means `dflt`. */
export const count = (dflt: number, max: number, description: string) =>
  queryValue((v) => {
    const n = Number(firstValue(v));
    return Number.isInteger(n) && n >= 1 ? Math.min(n, max) : dflt;
  }, z.number().int().min(1).max(max).default(dflt)).describe(description);

/** 1, true or yes (any case) mean true. */
export const flag = (description: string) =>
  queryValue((v) => ["1", "true", "yes"].includes((firstValue(v) ?? "").toLowerCase()), z.boolean()).describe(
    description,
  );

/** One of `values`; anything else counts as absent. */
export const choice = <T extends string>(values: [T, ...T[]], description: string) =>
  queryValue((v) => {
    const s = firstValue(v);
    return (values as string[]).includes(s ?? "") ? s : undefined;
  }, z.enum(values).optional()).describe(description);
