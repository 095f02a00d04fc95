import type { DicomHeader } from "../dicom/header.js";
import type { TypedQueue } from "../queues/index.js";
import type { StudyRegistry } from "../registry/studies.js";
import { KeyedBatcher } from "../util/keyed-batcher.js";
import { armArrival } from "./arrival.js";

export interface Activity {
  studyInstanceUid: string;
  callingAe: string;
  calledAe: string;
  peer: string;
  header: DicomHeader;
}

export type StudyActivity = KeyedBatcher<Activity, void>;

/**
 * Registry update and arrival (re)arming per study, batched: a burst of images costs one registry
 * write and one debounce call per batch rather than per image.
 */
export function studyActivity(registry: StudyRegistry, arrivalQueue: TypedQueue<"arrival">, quietMs: number) {
  return new KeyedBatcher<Activity, void>(async (study, items) => {
    const { header, ...conn } = items[0]!;
    const modalities = new Set(items.map((i) => i.header.string("Modality")).filter((m): m is string => !!m));
    await registry.touch({
      ...conn,
      studyDate: header.string("StudyDate"),
      studyTime: header.string("StudyTime"),
      studyDescription: header.string("StudyDescription"),
      accessionNumber: header.string("AccessionNumber"),
      modalities: [...modalities],
    });
    await armArrival(arrivalQueue, study, quietMs);
  });
}
