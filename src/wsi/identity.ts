/** The converter's pseudonymized SlideDataset for one upload (pure). */
import { createHash } from "node:crypto";
import { hmacUid } from "../deid/uid.js";
import type { SlideDataset } from "./convert.js";
import type { SlideMetadata } from "./metadata.js";

export interface SlideIdentityInput {
  project: string;
  participant: string;
  event?: string;
  uploadId: string;
  metadata: SlideMetadata;
  /** Upload completion time: becomes StudyDate/StudyTime (not shifted: it is not a clinical date). */
  completedAt: Date;
  studyPer: "slide" | "request";
  siteSecret: string;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** StudyID = block + biopsy nr + slide nr; SH holds 16 characters, longer ones become a stable hash. */
export function slideStudyId(metadata: SlideMetadata, uploadId: string): string {
  const joined = [metadata.block, metadata.biopsyNr, metadata.slideNr].filter(Boolean).join("");
  const value = joined || uploadId;
  if (value.length <= 16) return value;
  return createHash("sha256").update(value).digest("hex").slice(0, 16).toUpperCase();
}

export function slideDataset(input: SlideIdentityInput): SlideDataset {
  const { project, participant, event = "", uploadId, metadata: m, completedAt: t } = input;
  const requestKey = m.biopsyId ?? m.biopsyNr ?? uploadId;
  const studyKey = input.studyPer === "slide" ? `slide:${uploadId}` : `request:${requestKey}`;
  const uid = (what: string): string =>
    hmacUid(`wsi:${what}:${participant}\u0000${event}\u0000${studyKey}`, project, input.siteSecret);
  const pathology: Record<string, string> = {};
  for (const [key, value] of Object.entries(m)) if (value) pathology[key] = value;
  const description = [m.specimen, m.stain, m.block, m.biopsyNr, m.slideNr, m.department]
    .filter(Boolean)
    .join(" ")
    .slice(0, 64);
  return {
    // The same PatientName as the radiology path writes (the participant as it is), so a PACS that
    // matches names sees one patient.
    patientName: participant,
    patientId: participant,
    studyInstanceUid: uid("study"),
    seriesInstanceUid: hmacUid(`wsi:series:${uploadId}`, project, input.siteSecret),
    studyId: slideStudyId(m, uploadId),
    studyDate: `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}`,
    studyTime: `${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}`,
    institutionName: project,
    referringPhysicianName: event ? `EventName:${event}` : undefined,
    seriesDescription: description || undefined,
    containerIdentifier: m.slideId ?? uploadId,
    specimenIdentifier: m.specimen ?? m.slideId ?? uploadId,
    specimenUid: hmacUid(`wsi:specimen:${uploadId}`, project, input.siteSecret),
    specimenDescription: m.specimen,
    stain: m.stain,
    pathology,
  };
}
