import type { DicomHeader } from "../dicom/header.js";
import type { StudyRegistry } from "../registry/studies.js";
import { KeyedBatcher } from "../util/keyed-batcher.js";
import { armArrival, type ArrivalTarget } from "./arrival.js";
import { markIngested } from "./pending.js";

export interface Activity {
  studyInstanceUid: string;
  callingAe: string;
  calledAe: string;
  peer: string;
  header: DicomHeader;
  /** The ingest job, so the study's arrival stops waiting for it. */
  jobId: string;
  /** When the receiver stored the image (epoch ms). */
  receivedAtMs: number;
}

export type StudyActivity = KeyedBatcher<Activity, void>;

export interface StudyActivityDeps extends ArrivalTarget {
  registry: StudyRegistry;
  quietMs: number;
  pollMs: number;
}

/**
 * Registry update, ingested marks and arrival (re)arming per study, batched: a burst of images
 * costs one of each per batch rather than per image. The arrival is armed for the end of the quiet
 * time after the batch's newest image was received (at least pollMs, so ingest far behind the
 * receiver does not keep waking it).
 */
export function studyActivity(deps: StudyActivityDeps) {
  return new KeyedBatcher<Activity, void>(async (study, items) => {
    const { header, ...conn } = items[0]!;
    const modalities = new Set(items.map((i) => i.header.string("Modality")).filter((m): m is string => !!m));
    await deps.registry.touch({
      studyInstanceUid: conn.studyInstanceUid,
      callingAe: conn.callingAe,
      calledAe: conn.calledAe,
      peer: conn.peer,
      studyDate: header.string("StudyDate"),
      studyTime: header.string("StudyTime"),
      studyDescription: header.string("StudyDescription"),
      accessionNumber: header.string("AccessionNumber"),
      modalities: [...modalities],
    });
    await markIngested(
      deps.redis,
      deps.prefix,
      study,
      items.map((i) => i.jobId),
    );
    const newest = Math.max(...items.map((i) => i.receivedAtMs));
    await armArrival(deps, study, Math.max(deps.quietMs - (Date.now() - newest), deps.pollMs));
  });
}
