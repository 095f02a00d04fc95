/** Pathology metadata of a slide upload: validation and `--meta key=value` parsing (pure). */

export interface SlideMetadata {
  specimen?: string;
  block?: string;
  slideId?: string;
  slideNr?: string;
  stain?: string;
  biopsyNr?: string;
  biopsyId?: string;
  department?: string;
  rek?: string;
  databaseId?: string;
}

type Field = keyof SlideMetadata;

/** Length limits fit the VRs the values go to (LO 64, SH 16 for parts of StudyID). */
const FIELDS: Record<Field, { max: number; aliases: string[] }> = {
  specimen: { max: 64, aliases: ["patho_specimen"] },
  block: { max: 16, aliases: ["patho_block_nr"] },
  slideId: { max: 64, aliases: ["patho_slide_id", "slide_id"] },
  slideNr: { max: 16, aliases: ["patho_slide_nr", "slide_nr"] },
  stain: { max: 64, aliases: ["patho_stain"] },
  biopsyNr: { max: 16, aliases: ["patho_biopsy_nr", "biopsy_nr"] },
  biopsyId: { max: 64, aliases: ["patho_biopsy_id", "biopsy_id"] },
  department: { max: 64, aliases: ["patho_department"] },
  rek: { max: 64, aliases: ["patho_rek"] },
  databaseId: { max: 64, aliases: ["patho_databaseid", "databaseid"] },
};

/** Printable text without backslash (DICOM value separator) or control characters. */
const ALLOWED = /^[\p{L}\p{N} _.,:;+\-/()#%&'=*]*$/u;

export class MetadataError extends Error {}

const byName = new Map<string, Field>();
for (const [field, def] of Object.entries(FIELDS) as Array<[Field, (typeof FIELDS)[Field]]>) {
  byName.set(field.toLowerCase(), field);
  for (const alias of def.aliases) byName.set(alias, field);
}

/** Canonical field for a key (canonical name or the original's patho_* alias), or undefined. */
function metadataField(key: string): Field | undefined {
  return byName.get(key.trim().toLowerCase());
}

/** Validate raw key/values (aliases accepted); unknown keys and bad values throw naming the field. */
export function parseMetadata(raw: Record<string, unknown>): SlideMetadata {
  const out: SlideMetadata = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || value === null || value === "") continue;
    const field = metadataField(key);
    if (!field) throw new MetadataError(`unknown pathology field "${key}"`);
    const text = typeof value === "number" ? String(value) : value;
    if (typeof text !== "string") throw new MetadataError(`${field}: must be text`);
    const trimmed = text.trim();
    if (trimmed.length > FIELDS[field].max) {
      throw new MetadataError(`${field}: longer than ${FIELDS[field].max} characters`);
    }
    if (!ALLOWED.test(trimmed)) {
      throw new MetadataError(`${field}: contains characters that are not allowed`);
    }
    if (trimmed) out[field] = trimmed;
  }
  return out;
}

/** Parse repeated `--meta key=value` options into validated metadata. */
export function parseMetaOptions(options: readonly string[]): SlideMetadata {
  const raw: Record<string, string> = {};
  for (const option of options) {
    const eq = option.indexOf("=");
    if (eq <= 0) throw new MetadataError(`--meta "${option}": expected key=value`);
    raw[option.slice(0, eq)] = option.slice(eq + 1);
  }
  return parseMetadata(raw);
}
