import { QUEUES, arrivalDedupId, type TypedQueue } from "../queues/index.js";

/**
 * (Re)arm a study's arrival: a debounced job that fires quietMs after the last call.
 * Each call replaces the pending delayed job, so the quiet period restarts with every image.
 */
export async function armArrival(
  queue: TypedQueue<"arrival">,
  studyInstanceUid: string,
  quietMs: number,
): Promise<void> {
  const delay = Math.max(1, Math.round(quietMs));
  await queue.add(
    QUEUES.arrival,
    { studyInstanceUid },
    {
      delay,
      deduplication: { id: arrivalDedupId(studyInstanceUid), ttl: delay, extend: true, replace: true },
    },
  );
}
