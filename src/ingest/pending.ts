import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { QUEUES, type IngestJob, type TypedQueue } from "../queues/index.js";
import { RECEPTION_TTL_MS, receptionKeys } from "./reception.js";

/**
 * The job joins the study's pending set, scored by when it was noted, and the study's last reception
 * moves forward, never back (two receivers' clocks may disagree by a few ms). One command.
 */
const NOTE = `
redis.call("zadd", KEYS[2], ARGV[2], ARGV[3])
local last = tonumber(redis.call("hget", KEYS[1], "lastReceivedMs") or "0")
if tonumber(ARGV[1]) > last then redis.call("hset", KEYS[1], "lastReceivedMs", ARGV[1]) end
redis.call("pexpire", KEYS[1], ARGV[4])
redis.call("pexpire", KEYS[2], ARGV[4])
return 1`;

/**
 * Note that ingest job `jobId` for an image of the study, received at `receivedAtMs`, is pending: the
 * study does not arrive before that job has finished. Call it with (or just before) the job's add;
 * only the id is kept, arrival looks the job up in the queue.
 */
export async function notePendingIngest(
  redis: Redis,
  prefix: string,
  studyInstanceUid: string,
  jobId: string,
  receivedAtMs: number,
  nowMs = Date.now(),
): Promise<void> {
  const k = receptionKeys(prefix, studyInstanceUid);
  await redis.eval(NOTE, 2, k.record, k.pending, receivedAtMs, nowMs, jobId, RECEPTION_TTL_MS);
}

/**
 * Add the ingest job of an archived image of the study and note it pending: the way to enqueue
 * ingest work, so the study's arrival waits for it. The two commands go out together on the
 * connection, so this costs one round trip, like the add alone.
 */
export async function addIngestJob(
  redis: Redis,
  prefix: string,
  queue: TypedQueue<"ingest">,
  studyInstanceUid: string,
  job: IngestJob,
): Promise<string> {
  const jobId = randomUUID();
  const now = Date.now();
  await Promise.all([
    notePendingIngest(redis, prefix, studyInstanceUid, jobId, Date.parse(job.receivedAt) || now, now),
    queue.add(QUEUES.ingest, job, { jobId }),
  ]);
  return jobId;
}

/**
 * Ingest ran jobs `jobIds` of the study to their end: their score becomes 0. Until BullMQ records
 * them finished they still count as pending (a worker may die in between); once their job is gone
 * from the queue they count as finished, without waiting for the add grace below.
 */
export async function markIngested(
  redis: Redis,
  prefix: string,
  studyInstanceUid: string,
  jobIds: string[],
): Promise<void> {
  if (jobIds.length === 0) return;
  const { pending } = receptionKeys(prefix, studyInstanceUid);
  await redis.zadd(pending, "XX", ...jobIds.flatMap((id) => [0, id]));
}

/** Jobs looked up per round trip. */
const BATCH = 200;

/**
 * A noted job not in the queue and not marked ingested may be one whose add is still on its way
 * (the note goes out first); this long after its note (the receiver's enqueue timeout and then some)
 * it was never added, or failed and was removed.
 */
const ADD_GRACE_MS = 10_000;

/**
 * Whether an ingest job of the study is still waiting, delayed or active (including one held by a
 * worker that died, until BullMQ's stalled check hands it on). Jobs are looked up in batches, those
 * ingest finished first; finished ones (completed, failed for good, removed) leave the set, and the
 * first batch with an unfinished job ends the look. Nothing is counted down: a retried attempt, a
 * crash or a duplicate cannot make the set drift, the queue's own record decides.
 */
export async function hasPendingIngest(
  redis: Redis,
  prefix: string,
  ingestQueue: TypedQueue<"ingest">,
  studyInstanceUid: string,
  nowMs = Date.now(),
): Promise<boolean> {
  const { pending } = receptionKeys(prefix, studyInstanceUid);
  for (;;) {
    const flat = await redis.zrange(pending, 0, BATCH - 1, "WITHSCORES");
    if (flat.length === 0) return false;
    const noted = Array.from({ length: flat.length / 2 }, (_, i) => ({
      id: flat[2 * i]!,
      notedAtMs: Number(flat[2 * i + 1]),
    }));
    const jobs = await Promise.all(noted.map((n) => ingestQueue.getJob(n.id)));
    const finished = noted
      .filter(({ notedAtMs }, i) => {
        const job = jobs[i];
        if (job !== undefined) return job.finishedOn !== undefined;
        return notedAtMs === 0 || nowMs - notedAtMs >= ADD_GRACE_MS;
      })
      .map((n) => n.id);
    if (finished.length > 0) await redis.zrem(pending, ...finished);
    if (finished.length < noted.length) return true;
  }
}
