/**
 * Siemens CSA headers: the image header (0029,1010) and the series header (0029,1020), whose
 * MrPhoenixProtocol holds the scanner protocol as text. Layouts as in nibabel's csareader / SPM:
 * "SV10" (CSA2) or no magic (CSA1), then tags of 84 bytes, each followed by its items.
 * Every function returns undefined for missing or garbage input; none throws.
 */
import type { DicomHeader } from "./header.js";

/** Element name -> its non-empty values as trimmed text. */
export type CsaHeader = Map<string, string[]>;

/** As FIONA stores a CSA value: "" without values, a string for one value, a list for several. */
export type CsaValue = string | string[];

const MAX_COUNT = 1000;
const TAG_BYTES = 84;

export function parseCsaHeader(bytes: Uint8Array | undefined): CsaHeader | undefined {
  if (!bytes || bytes.length < 16) return undefined;
  try {
    return parse(bytes);
  } catch {
    return undefined;
  }
}

function parse(bytes: Uint8Array): CsaHeader | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const csa2 = text(bytes, 0, 4) === "SV10";
  let pos = csa2 ? 8 : 0;
  const tagCount = view.getUint32(pos, true);
  if (tagCount === 0 || tagCount > MAX_COUNT) return undefined;
  pos += 8;
  const result: CsaHeader = new Map();
  let firstItemCount = 0;
  for (let t = 0; t < tagCount; t++) {
    if (pos + TAG_BYTES > bytes.length) return undefined;
    const name = text(bytes, pos, 64);
    const itemCount = view.getInt32(pos + 76, true);
    if (itemCount < 0 || itemCount > MAX_COUNT) return undefined;
    if (t === 0) firstItemCount = itemCount;
    pos += TAG_BYTES;
    const values: string[] = [];
    for (let i = 0; i < itemCount; i++) {
      if (pos + 16 > bytes.length) return undefined;
      // CSA1 stores the length offset by the first tag's item count (SPM's read_csa1).
      const length = csa2 ? view.getInt32(pos + 4, true) : view.getInt32(pos, true) - firstItemCount;
      pos += 16;
      if (length < 0 || pos + length > bytes.length) {
        if (csa2) return undefined;
        break;
      }
      const value = text(bytes, pos, length);
      if (value !== "") values.push(value);
      pos += length + ((4 - (length % 4)) % 4);
    }
    if (name !== "") result.set(name, values);
  }
  return result;
}

/** Latin-1 text up to the first NUL, trimmed. */
function text(bytes: Uint8Array, start: number, length: number): string {
  const end = Math.min(start + length, bytes.length);
  let stop = start;
  while (stop < end && bytes[stop] !== 0) stop++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, stop - start)
    .toString("latin1")
    .trim();
}

export function csaValue(csa: CsaHeader | undefined, name: string): CsaValue | undefined {
  const values = csa?.get(name);
  if (values === undefined) return undefined;
  return values.length === 1 ? values[0]! : values.length === 0 ? "" : values;
}

/** FIONA's locations: the first non-empty of each list. */
const IMAGE_TAGS: Array<[number, number]> = [
  [0x0029, 0x1010],
  [0x0029, 0x1210],
  [0x0029, 0x1110],
];
const SERIES_TAGS: Array<[number, number]> = [
  [0x0029, 0x1020],
  [0x0029, 0x1220],
  [0x0029, 0x1120],
];

export function readSiemensCsa(header: DicomHeader): { image?: CsaHeader; series?: CsaHeader } {
  const first = (tags: Array<[number, number]>) => {
    for (const [group, element] of tags) {
      const bytes = header.bytes(group, element);
      if (bytes && bytes.length > 0) return parseCsaHeader(bytes);
    }
    return undefined;
  };
  return { image: first(IMAGE_TAGS), series: first(SERIES_TAGS) };
}

export interface PhoenixFields {
  siemensUUID?: string;
  /** Slices in the first slice group (sGroupArray.asGroup[0].nSize), as text. */
  NumSlices?: string;
  MeasID?: string;
  /** Software level from the baseline string, e.g. "VE11C" from "N4_VE11C_LATEST_20160120". */
  OSLevel?: string;
}

/**
 * FIONA's regular expressions on the series CSA's MrPhoenixProtocol (ASCCONV "key = value" lines);
 * FIONA required tabs around "=", any whitespace is accepted here.
 */
const PHOENIX: Array<[keyof PhoenixFields, RegExp]> = [
  ["siemensUUID", /sWipMemBlock\.tFree\s*=\s*""([^"]+)/],
  ["OSLevel", /sProtConsistencyInfo\.tMeasuredBaselineString\s*=\s*""N4_([^_"]+)/],
  ["NumSlices", /sGroupArray\.asGroup\[0\]\.nSize\s*=\s*([^\ns"]+)/],
  ["MeasID", /SequenceID\s*=\s*([^\n"]+)/],
];

export function phoenixFields(series: CsaHeader | undefined): PhoenixFields {
  const protocol = series?.get("MrPhoenixProtocol")?.[0];
  const fields: PhoenixFields = {};
  if (!protocol) return fields;
  for (const [field, re] of PHOENIX) {
    const value = re.exec(protocol)?.[1]?.trim();
    if (value) fields[field] = value;
  }
  return fields;
}
