/**
 * FIONA's one DICOM data dictionary: every standard element (generated from the dictionary packaged
 * in dcmjs by scripts/gen-dictionary.mjs into dictionary-data.ts; US-or-SS elements are US, OB-or-OW
 * ones OW), plus the private elements FIONA reads by fixed tag. Implicit-VR files need it to decode
 * values and the de-identification engine to know which elements are sequences, names, UIDs and dates;
 * explicit-VR files carry their own VR.
 */
import { STANDARD_ELEMENTS } from "./dictionary-data.js";

/**
 * Private elements FIONA reads by fixed tag, keyed by private creator so implicit-VR files decode them:
 * "ggggxxee VR Name @ Creator" (xx is the creator's block).
 */
const PRIVATE = `
0019xx0A US NumberOfImagesInMosaic @ SIEMENS MR HEADER
0019xx0B DS SliceMeasurementDuration @ SIEMENS MR HEADER
0019xx0C IS B_value @ SIEMENS MR HEADER
0019xx0D CS DiffusionDirectionality @ SIEMENS MR HEADER
0019xx0E FD DiffusionGradientDirection @ SIEMENS MR HEADER
0019xx0F SH GradientMode @ SIEMENS MR HEADER
0019xx27 FD B_matrix @ SIEMENS MR HEADER
0051xx0A SH TimeOfAcquisition @ SIEMENS MR HEADER
0051xx0B SH AcquisitionMatrixText @ SIEMENS MR HEADER
0051xx0F LO CoilString @ SIEMENS MR HEADER
0051xx11 LO PATModeText @ SIEMENS MR HEADER
0029xx08 CS CSAImageHeaderType @ SIEMENS CSA HEADER
0029xx09 LO CSAImageHeaderVersion @ SIEMENS CSA HEADER
0029xx10 OB CSAImageHeaderInfo @ SIEMENS CSA HEADER
0029xx18 CS CSASeriesHeaderType @ SIEMENS CSA HEADER
0029xx19 LO CSASeriesHeaderVersion @ SIEMENS CSA HEADER
0029xx20 OB CSASeriesHeaderInfo @ SIEMENS CSA HEADER
0019xx5A FL AcquisitionDuration @ GEMS_ACQU_01
0019xx9C LO PulseSequenceName @ GEMS_ACQU_01
0019xxB3 DS UserData12 @ GEMS_ACQU_01
0019xxBB DS UserData20 @ GEMS_ACQU_01
0019xxBC DS UserData21 @ GEMS_ACQU_01
0019xxBD DS UserData22 @ GEMS_ACQU_01
0021xx4F SS LocationsInAcquisition @ GEMS_RELA_01
0043xx39 IS SlopInt6To9 @ GEMS_PARM_01
2001xx03 FL DiffusionBFactor @ Philips Imaging DD 001
2001xx04 CS DiffusionDirection @ Philips Imaging DD 001
2001xx18 SL NumberOfSlicesMR @ Philips Imaging DD 001
2001xx20 LO ScanningTechniqueDescriptionMR @ Philips Imaging DD 001
`;

export interface DictEntry {
  /** (group << 16 | element), unsigned. */
  tag: number;
  vr: string;
  keyword: string;
}

const byTag = new Map<number, DictEntry>();
const byKeyword = new Map<string, DictEntry>();
for (const line of STANDARD_ELEMENTS.split("\n")) {
  if (line.length < 12) continue;
  const entry = { tag: parseInt(line.slice(0, 8), 16), vr: line.slice(9, 11), keyword: line.slice(12) };
  byTag.set(entry.tag, entry);
  byKeyword.set(entry.keyword, entry);
}

/** Key: "<creator>|<group>|<low byte of element>". */
const privateVrs = new Map<string, string>();
for (const line of PRIVATE.split("\n")) {
  const match = /^([0-9A-F]{4})xx([0-9A-F]{2}) (\w\w) \S+ @ (.+)$/.exec(line);
  if (match) privateVrs.set(`${match[4]}|${parseInt(match[1]!, 16)}|${parseInt(match[2]!, 16)}`, match[3]!);
}

export function entryForTag(tag: number): DictEntry | undefined {
  return byTag.get(tag);
}

export function entryForKeyword(keyword: string): DictEntry | undefined {
  return byKeyword.get(keyword);
}

/** VR of a private element given its block's creator string, e.g. ("SIEMENS CSA HEADER", 0x0029, 0x1010). */
export function privateVr(creator: string, group: number, element: number): string | undefined {
  return privateVrs.get(`${creator}|${group}|${element & 0xff}`);
}

/** Every standard element (the de-identification profile derives its generic rules from them). */
export function standardEntries(): Iterable<DictEntry> {
  return byTag.values();
}
