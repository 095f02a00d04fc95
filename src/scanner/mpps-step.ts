/**
 * What FIONA keeps of a Modality Performed Procedure Step (PS3.4 F.7): the identifiers a pull needs
 * and nothing else. An N-CREATE carries the patient's name, ID, birth date and accession number; they
 * are never read here, so they cannot reach Redis, logs or job data.
 */
import { isPathSafeUid } from "../dicom/uid.js";

export const MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3";

/** N-CREATE / N-SET failure statuses (PS3.7 C.4.2, C.4.3; PS3.4 F.7.2). */
export const MPPS_STATUS = {
  Success: 0x0000,
  InvalidAttributeValue: 0x0106,
  ProcessingFailure: 0x0110,
  DuplicateSopInstance: 0x0111,
  NoSuchSopInstance: 0x0112,
  MissingAttribute: 0x0120,
} as const;

export type StepStatus = "IN PROGRESS" | "COMPLETED" | "DISCONTINUED";
const STATUSES: readonly StepStatus[] = ["IN PROGRESS", "COMPLETED", "DISCONTINUED"];

export interface PerformedSeries {
  seriesInstanceUid: string;
  /** Items of ReferencedImageSequence plus ReferencedNonImageCompositeSOPInstanceSequence. */
  images: number;
}

export interface MppsStep {
  sopInstanceUid: string;
  /** scanners.list[].name the calling AE title matched. */
  scanner: string;
  callingAe: string;
  status: StepStatus;
  /** From ScheduledStepAttributesSequence (one per scheduled step; usually one study). */
  studyInstanceUids: string[];
  /** PerformedProcedureStepStart/EndDate + Time as YYYYMMDDHHMMSS… (the scanner's local time). */
  start?: string;
  end?: string;
  series: PerformedSeries[];
  /** ISO times FIONA stored and last changed the step. */
  createdAt: string;
  updatedAt: string;
}

/** A request FIONA answers with a failure status; the message is safe to log (no attribute values). */
export class MppsError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "MppsError";
  }
}

/** A naturalized dataset as dcmjs-dimse hands it over (keyword → value). */
export type Elements = Record<string, unknown>;

const text = (v: unknown): string | undefined => {
  const one = Array.isArray(v) ? v[0] : v;
  if (one === undefined || one === null) return undefined;
  const s = String(one).trim();
  return s === "" ? undefined : s;
};

const items = (v: unknown): Elements[] =>
  Array.isArray(v) ? v.filter((x): x is Elements => !!x && typeof x === "object") : [];

function dateTime(e: Elements, which: "Start" | "End"): string | undefined {
  const date = text(e[`PerformedProcedureStep${which}Date`]);
  if (date === undefined) return undefined;
  const time = text(e[`PerformedProcedureStep${which}Time`]) ?? "";
  const dt = `${date}${time}`.replace(/[^0-9.]/g, "");
  return dt === "" ? undefined : dt.slice(0, 26);
}

function status(e: Elements): StepStatus | undefined {
  const s = text(e.PerformedProcedureStepStatus);
  if (s === undefined) return undefined;
  const upper = s.toUpperCase() as StepStatus;
  if (!STATUSES.includes(upper))
    throw new MppsError(
      MPPS_STATUS.InvalidAttributeValue,
      "PerformedProcedureStepStatus is not a known value",
    );
  return upper;
}

function performedSeries(e: Elements): PerformedSeries[] | undefined {
  if (!("PerformedSeriesSequence" in e)) return undefined;
  return items(e.PerformedSeriesSequence).map((item) => {
    const uid = text(item.SeriesInstanceUID);
    if (!isPathSafeUid(uid))
      throw new MppsError(
        MPPS_STATUS.InvalidAttributeValue,
        "PerformedSeriesSequence: invalid SeriesInstanceUID",
      );
    const images =
      items(item.ReferencedImageSequence).length +
      items(item.ReferencedNonImageCompositeSOPInstanceSequence).length;
    return { seriesInstanceUid: uid, images };
  });
}

export interface StepOrigin {
  sopInstanceUid: string;
  scanner: string;
  callingAe: string;
  now: Date;
}

/** The step an N-CREATE describes; throws MppsError for what PS3.4 F.7.2.1 does not allow. */
export function stepFromCreate(e: Elements, origin: StepOrigin): MppsStep {
  if (!isPathSafeUid(origin.sopInstanceUid))
    throw new MppsError(MPPS_STATUS.InvalidAttributeValue, "invalid Affected SOP Instance UID");
  const st = status(e);
  if (st === undefined)
    throw new MppsError(MPPS_STATUS.MissingAttribute, "PerformedProcedureStepStatus is missing");
  if (st !== "IN PROGRESS")
    throw new MppsError(MPPS_STATUS.InvalidAttributeValue, "an N-CREATE must have the status IN PROGRESS");
  const studies = items(e.ScheduledStepAttributesSequence).map((item) => text(item.StudyInstanceUID));
  if (studies.length === 0 || studies.some((s) => s === undefined))
    throw new MppsError(
      MPPS_STATUS.MissingAttribute,
      "ScheduledStepAttributesSequence with a StudyInstanceUID is missing",
    );
  if (!studies.every(isPathSafeUid))
    throw new MppsError(MPPS_STATUS.InvalidAttributeValue, "invalid StudyInstanceUID");
  const now = origin.now.toISOString();
  const start = dateTime(e, "Start");
  return {
    sopInstanceUid: origin.sopInstanceUid,
    scanner: origin.scanner,
    callingAe: origin.callingAe,
    status: st,
    studyInstanceUids: [...new Set(studies)],
    ...(start ? { start } : {}),
    series: performedSeries(e) ?? [],
    createdAt: now,
    updatedAt: now,
  };
}

/** The step after an N-SET; a step that is already COMPLETED or DISCONTINUED cannot change (F.7.2.2). */
export function applySet(step: MppsStep, e: Elements, now: Date): MppsStep {
  if (step.status !== "IN PROGRESS")
    throw new MppsError(MPPS_STATUS.ProcessingFailure, `the step is already ${step.status}`);
  const st = status(e);
  const end = dateTime(e, "End");
  const series = performedSeries(e);
  return {
    ...step,
    ...(st ? { status: st } : {}),
    ...(end ? { end } : {}),
    ...(series ? { series } : {}),
    updatedAt: now.toISOString(),
  };
}

/** Whether every step is over (COMPLETED or DISCONTINUED); false without any step. */
export function stepsEnded(steps: readonly MppsStep[]): boolean {
  return steps.length > 0 && steps.every((s) => s.status !== "IN PROGRESS");
}
