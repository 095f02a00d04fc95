import type { Job, Queue } from "bullmq";

/** One queue's consumers and backlog, as /readyz and the metrics report them. */
export interface QueueLiveness {
  queue: string;
  /** Workers connected to the queue (BullMQ's CLIENT LIST of named worker connections). */
  workers: number;
  waiting: number;
  /** How long the oldest waiting job has waited (0 when none waits). */
  oldestWaitingMs: number;
  /** Jobs wait with no worker to take them, or the oldest waited longer than the threshold. */
  stalled: boolean;
}

export interface LivenessSample {
  queue: string;
  workers: number;
  waiting: number;
  /** When the oldest waiting job became due (enqueue time plus its delay), if any. */
  oldestWaitingSince?: number;
}

/** Pure part: judge one sample. */
export function judgeLiveness(s: LivenessSample, now: number, maxWaitingMs: number): QueueLiveness {
  const oldestWaitingMs =
    s.waiting > 0 && s.oldestWaitingSince !== undefined ? Math.max(0, now - s.oldestWaitingSince) : 0;
  return {
    queue: s.queue,
    workers: s.workers,
    waiting: s.waiting,
    oldestWaitingMs,
    stalled: s.waiting > 0 && (s.workers === 0 || oldestWaitingMs > maxWaitingMs),
  };
}

const dueAt = (job: Job | undefined) => (job ? job.timestamp + (job.delay || 0) : undefined);

/** Read workers and the waiting backlog of each queue (the oldest waiting job is the list's tail). */
export async function workerLiveness(
  queues: Iterable<Queue>,
  opts: { maxWaitingMs?: number; now?: () => number } = {},
): Promise<QueueLiveness[]> {
  const maxWaitingMs = opts.maxWaitingMs ?? 900_000;
  return Promise.all(
    [...queues].map(async (q) => {
      const [workers, waiting, oldest] = await Promise.all([
        q.getWorkersCount(),
        q.getWaitingCount(),
        q.getJobs(["wait"], 0, 0, true),
      ]);
      return judgeLiveness(
        { queue: q.name, workers, waiting, oldestWaitingSince: dueAt(oldest[0]) },
        (opts.now ?? Date.now)(),
        maxWaitingMs,
      );
    }),
  );
}
