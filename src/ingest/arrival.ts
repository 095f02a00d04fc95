import type { Redis } from "ioredis";
import { QUEUES, arrivalDedupId, type TypedQueue } from "../queues/index.js";
import { bumpRevision } from "./reception.js";

export interface ArrivalTarget {
  redis: Redis;
  prefix: string;
  arrivalQueue: TypedQueue<"arrival">;
}

/**
 * Have the arrival stage look at the study in `delayMs`. One job per study at a time (BullMQ
 * deduplication until it finishes): a study already waiting for its look keeps that one; while a look
 * runs, the latest request is kept and queued once it ends, so nothing asked for during a look is lost.
 */
export async function scheduleArrivalCheck(
  queue: TypedQueue<"arrival">,
  studyInstanceUid: string,
  delayMs: number,
): Promise<void> {
  await queue.add(
    QUEUES.arrival,
    { studyInstanceUid },
    {
      delay: Math.max(1, Math.round(delayMs)),
      deduplication: { id: arrivalDedupId(studyInstanceUid), keepLastIfActive: true },
    },
  );
}

/** Something about the study changed (images ingested, series reclassified): announce it again. */
export async function armArrival(
  target: ArrivalTarget,
  studyInstanceUid: string,
  delayMs: number,
): Promise<void> {
  await bumpRevision(target.redis, target.prefix, studyInstanceUid);
  await scheduleArrivalCheck(target.arrivalQueue, studyInstanceUid, delayMs);
}
