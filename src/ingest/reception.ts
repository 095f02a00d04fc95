import type { Redis } from "ioredis";

/**
 * Per study, what its arrival is decided on, in one hash `<prefix>:reception:<StudyInstanceUID>`:
 *   lastReceivedMs   when the receiver last stored an image of it (written with the pending note, see pending.ts);
 *   revision         bumped whenever the pipeline changed it (an image ingested, a series reclassified);
 *   arrivedRevision  the revision its last `study-arrived` covered.
 * Next to it, `<…>:pending`, the ids of its ingest jobs not yet seen finished. UIDs and times only.
 */
export function receptionKeys(prefix: string, studyInstanceUid: string) {
  const record = `${prefix}:reception:${studyInstanceUid}`;
  return { record, pending: `${record}:pending` };
}

/** Outlives any ingest outage worth waiting for; bounds what an abandoned study leaves in Redis. */
export const RECEPTION_TTL_MS = 30 * 24 * 3600 * 1000;

export interface ReceptionState {
  /** Undefined when no receiver noted the study (its jobs came from elsewhere). */
  lastReceivedMs?: number;
  revision: number;
  arrivedRevision: number;
}

export async function readReception(
  redis: Redis,
  prefix: string,
  studyInstanceUid: string,
): Promise<ReceptionState> {
  const [last, revision, arrived] = await redis.hmget(
    receptionKeys(prefix, studyInstanceUid).record,
    "lastReceivedMs",
    "revision",
    "arrivedRevision",
  );
  return {
    ...(last !== null && { lastReceivedMs: Number(last) }),
    revision: Number(revision ?? 0),
    arrivedRevision: Number(arrived ?? 0),
  };
}

/** The study has something its next arrival must announce. */
export async function bumpRevision(redis: Redis, prefix: string, studyInstanceUid: string): Promise<void> {
  const { record } = receptionKeys(prefix, studyInstanceUid);
  await redis.multi().hincrby(record, "revision", 1).pexpire(record, RECEPTION_TTL_MS).exec();
}

/** Its `study-arrived` covering `revision` is queued. */
export async function markArrived(
  redis: Redis,
  prefix: string,
  studyInstanceUid: string,
  revision: number,
): Promise<void> {
  const { record } = receptionKeys(prefix, studyInstanceUid);
  await redis.multi().hset(record, "arrivedRevision", revision).pexpire(record, RECEPTION_TTL_MS).exec();
}
