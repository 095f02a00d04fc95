/**
 * Per-project de-identification settings (zod), for the configuration owner to embed:
 *
 * ```ts
 * projects: z.array(projectDeidSchema)
 * ```
 *
 * Everything has a default except `name`, so `{ name: "TOBE" }` is a complete project (FIONA profile,
 * HMAC UIDs, a date offset derived from the site secret, private tags removed).
 */
import { z } from "zod";
import { entryForKeyword } from "../dicom/dictionary.js";

/** Printable ASCII without backslash (a DICOM value separator), trimmed, non-empty. */
const dicomText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[\x20-\x5b\x5d-\x7e]+$/, "printable ASCII without backslash")
    .refine((s) => s.trim() === s, "no leading or trailing spaces");

/** "gggg,eeee" (hex) or a DICOM keyword such as "SeriesDescription". */
const TAG_KEY_RE = /^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$/;

/** Numeric tag of an override key, or undefined when it is neither "gggg,eeee" nor a known keyword. */
export function parseTagKey(key: string): number | undefined {
  const m = TAG_KEY_RE.exec(key.trim());
  if (m) return parseInt(`${m[1]}${m[2]}`, 16) >>> 0;
  return entryForKeyword(key.trim())?.tag;
}

const rectangle = z
  .object({
    x: z.number().int().min(0),
    y: z.number().int().min(0),
    width: z.number().int().min(1),
    height: z.number().int().min(1),
  })
  .strict();

/**
 * Pixel regions to blank (filled with 0), chosen by header signature like CTP's DicomPixelAnonymizer.
 * `manufacturer` and `model` match case-insensitively as substrings; `rows`/`columns` exactly; an
 * omitted field matches anything. The first matching entry wins.
 */
export const pixelRectanglesSchema = z
  .object({
    manufacturer: z.string().optional(),
    model: z.string().optional(),
    rows: z.number().int().min(1).optional(),
    columns: z.number().int().min(1).optional(),
    rectangles: z.array(rectangle).min(1),
  })
  .strict();

const deidOptionsSchema = z
  .object({
    /** Keep dates unchanged (DCM 113106). Wins over retainLongitudinalModifiedDates. */
    retainLongitudinalFullDates: z.boolean().optional(),
    /** Shift dates by the project offset, keep times (DCM 113107). Default true for "fiona". */
    retainLongitudinalModifiedDates: z.boolean().optional(),
    /** Keep age, sex, size, weight, ethnic group, smoking and pregnancy status (DCM 113108). Default true for "fiona". */
    retainPatientCharacteristics: z.boolean().optional(),
    /** Keep device serial numbers, station names and AE titles (DCM 113109). Default true for "fiona". */
    retainDeviceIdentity: z.boolean().optional(),
    /** Keep institution name, address and department (DCM 113112). Default false. */
    retainInstitutionIdentity: z.boolean().optional(),
    /**
     * Keep descriptions and comments after removing the patient's own identifiers (name parts, IDs,
     * accession number, birth date) from them (DCM 113105). Default false.
     */
    cleanDescriptors: z.boolean().optional(),
  })
  .strict();

export const projectDeidSchema = z
  .object({
    /** Project name: written to InstitutionName and the clinical-trial attributes, salt of every UID. */
    name: dicomText(64),
    /** Regular expression (JavaScript syntax, matched against the whole id) for participant pseudonyms. */
    participantPattern: z
      .string()
      .min(1)
      .refine((p) => {
        try {
          new RegExp(p);
          return true;
        } catch {
          return false;
        }
      }, "not a valid regular expression")
      .optional(),
    /** Event names of the project (written to ReferringPhysicianName and the time-point attributes). */
    events: z.array(dicomText(54)).default([]),
    profile: z.enum(["fiona", "basic"]).default("fiona"),
    uidMode: z.enum(["hmac", "fiona-legacy"]).default("hmac"),
    /** Fixed date offset in days; when absent the offset is derived from the site secret and the project. */
    dateOffsetDays: z.number().int().min(-36_500).max(36_500).optional(),
    /** Range of the derived offset (inclusive). */
    dateOffsetRange: z
      .object({ min: z.number().int().min(-36_500), max: z.number().int().max(36_500) })
      .strict()
      .refine((r) => r.min <= r.max, "min must not exceed max")
      .default({ min: -1825, max: -1 }),
    privateTags: z.enum(["keep", "remove"]).default("remove"),
    /** Keep PatientBirthDate (shifted like every other date when dates are modified). */
    keepBirthDate: z.boolean().default(false),
    options: deidOptionsSchema.default({}),
    /**
     * Single-attribute overrides, keyed by keyword or "gggg,eeee": keep, remove, empty, dummy, hash,
     * hashuid, incrementdate, incrementdatetime, the placeholders ProjectName / PatientID / EventName, or
     * any other text (written literally, created when missing). Private tags ("0009,1001") only take
     * effect when privateTags is "keep".
     */
    overrides: z
      .record(z.string(), z.string().max(1024))
      .default({})
      .superRefine((o, ctx) => {
        for (const key of Object.keys(o)) {
          const tag = parseTagKey(key);
          if (tag === undefined)
            ctx.addIssue({ code: z.ZodIssueCode.custom, message: `unknown attribute "${key}"` });
          else if (tag >>> 16 === 0x0002 || tag >>> 16 === 0xfffe) {
            ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${key}" cannot be overridden` });
          }
        }
      }),
    features: z
      .object({
        /** Drop presentation states (SOP classes 1.2.840.10008.5.1.4.1.1.11.*). */
        dropPresentationStates: z.boolean().default(false),
        /**
         * Series classified CHECKBURNEDINFO or instances with BurnedInAnnotation YES: "drop" them, "clean"
         * them with the matching pixel rectangles (dropped when none match), or "send" them unchanged.
         */
        burnedIn: z.enum(["drop", "clean", "send"]).default("clean"),
        pixelRectangles: z.array(pixelRectanglesSchema).default([]),
      })
      .strict()
      .default({}),
  })
  .strict();

/** A parsed project (defaults applied). */
export type ProjectDeid = z.output<typeof projectDeidSchema>;
/** What a configuration file may contain for a project. */
export type ProjectDeidInput = z.input<typeof projectDeidSchema>;
export type PixelRectangles = z.output<typeof pixelRectanglesSchema>;
export type DeidOptions = z.output<typeof deidOptionsSchema>;
