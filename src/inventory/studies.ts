/**
 * One study of the research PACS as the inventory keeps it, built from a C-FIND STUDY match, and the
 * merge of duplicate answers (the same study in two answers of one crawl). The original summed the
 * counts of duplicates, inflating them; here a duplicate fills only what the first answer left empty.
 */
import { matchText, type FindMatch } from "../dimse/find.js";

export interface InventoryStudy {
  studyInstanceUid: string;
  /** The research PACS's PatientID: the participant pseudonym for studies FIONA sent. */
  patientId?: string;
  patientName?: string;
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  studyId?: string;
  accessionNumber?: string;
  /** ModalitiesInStudy, backslash-separated. */
  modalities?: string;
  numberOfSeries?: number;
  numberOfInstances?: number;
  referringPhysician?: string;
  institutionName?: string;
}

/** The keys of the inventory's C-FIND STUDY query ("" = return it); InstitutionName is the project. */
export const STUDY_KEYS = [
  "StudyInstanceUID",
  "PatientID",
  "PatientName",
  "StudyDate",
  "StudyTime",
  "StudyDescription",
  "StudyID",
  "AccessionNumber",
  "ModalitiesInStudy",
  "NumberOfStudyRelatedSeries",
  "NumberOfStudyRelatedInstances",
  "ReferringPhysicianName",
  "InstitutionName",
] as const;

const count = (m: FindMatch, k: string): number | undefined => {
  const t = matchText(m, k);
  const n = t === undefined ? NaN : Number(t);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
};

/** The study of one match, or undefined for a match without a StudyInstanceUID. */
export function studyFromMatch(m: FindMatch): InventoryStudy | undefined {
  const studyInstanceUid = matchText(m, "StudyInstanceUID");
  if (!studyInstanceUid) return undefined;
  const s: InventoryStudy = {
    studyInstanceUid,
    patientId: matchText(m, "PatientID"),
    patientName: matchText(m, "PatientName"),
    studyDate: matchText(m, "StudyDate"),
    studyTime: matchText(m, "StudyTime"),
    studyDescription: matchText(m, "StudyDescription"),
    studyId: matchText(m, "StudyID"),
    accessionNumber: matchText(m, "AccessionNumber"),
    modalities: matchText(m, "ModalitiesInStudy"),
    numberOfSeries: count(m, "NumberOfStudyRelatedSeries"),
    numberOfInstances: count(m, "NumberOfStudyRelatedInstances"),
    referringPhysician: matchText(m, "ReferringPhysicianName"),
    institutionName: matchText(m, "InstitutionName"),
  };
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as InventoryStudy;
}

/** One entry per StudyInstanceUID, in first-seen order; later duplicates only fill missing fields. */
export function mergeStudies(studies: Iterable<InventoryStudy>): InventoryStudy[] {
  const byUid = new Map<string, InventoryStudy>();
  for (const s of studies) {
    const seen = byUid.get(s.studyInstanceUid);
    byUid.set(s.studyInstanceUid, seen ? { ...s, ...seen } : s);
  }
  return [...byUid.values()];
}

/** Identifying fields of a PACS study: shown only on request (CLI --show-phi, web.showPatientIdentity). */
const IDENTITY_FIELDS = ["patientId", "patientName", "accessionNumber", "referringPhysician"] as const;

export function withoutIdentity(s: InventoryStudy): InventoryStudy {
  const copy = { ...s };
  for (const f of IDENTITY_FIELDS) delete copy[f];
  return copy;
}
