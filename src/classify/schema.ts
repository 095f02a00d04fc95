import { z } from "zod";

export const OPERATORS = ["regexp", "==", "!=", "<", ">", "contains", "exist", "notexist", "approx"] as const;
export type Operator = (typeof OPERATORS)[number];

const scalar = z.union([z.string(), z.number()]);

/**
 * Unknown keys are refused (the original ignored them), so a typo such as "operater" or "negative"
 * cannot silently turn an entry into a plain regexp.
 */
export const leafSchema = z
  .object({
    tag: z.array(z.string()).min(1),
    value: z.union([scalar, z.array(scalar)]).optional(),
    operator: z.enum(OPERATORS).optional(),
    /** "yes" as in the original; boolean true is accepted too. */
    negate: z.union([z.enum(["yes", "no"]), z.boolean()]).optional(),
    approxLevel: z
      .union([z.number().nonnegative(), z.string().regex(/^\s*\d*\.?\d+([eE][+-]?\d+)?\s*$/)])
      .optional(),
  })
  .strict();

export const refSchema = z.object({ rule: z.string().min(1) }).strict();
export const notRefSchema = z.object({ notrule: z.string().min(1) }).strict();

export const definitionSchema = z
  .object({
    type: z.string().min(1),
    id: z.string().min(1).optional(),
    description: z.string().optional(),
    check: z.literal("SeriesLevel").optional(),
    rules: z.array(z.unknown()),
  })
  .strict();

export type RawLeaf = z.infer<typeof leafSchema>;
export type RawDefinition = z.infer<typeof definitionSchema>;

/** One line per zod issue: "<where> <key path>: <message>", e.g. `definition[3] (type "T1") rules[1] operator: …`. */
export function formatIssues(where: string, error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const key = i.path.map((p, n) => (typeof p === "number" ? `[${p}]` : n === 0 ? p : `.${p}`)).join("");
    return `${where}${key ? ` ${key}` : ""}: ${i.message}`;
  });
}
