import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { ALL_QUEUES, createQueue, type QueueName } from "./index.js";

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
  prioritized: number;
  waitingChildren: number;
  /**
   * Jobs held back because the queue is paused. BullMQ 6 no longer moves jobs to a separate paused
   * list: a paused queue keeps them in waiting/prioritized, so this is waiting + prioritized while
   * the queue is paused and 0 while it runs. Not additive with `waiting`.
   */
  paused: number;
  isPaused: boolean;
}

export type AllQueueCounts = Record<QueueName, QueueCounts>;

const DEFAULT_COUNTS_TIMEOUT_MS = 5000;

/** Counts of one queue (any BullMQ Queue, whatever its payload type). */
async function countQueue(queue: Queue): Promise<QueueCounts> {
  const [c, isPaused] = await Promise.all([
    queue.getJobCounts(
      "waiting",
      "active",
      "delayed",
      "failed",
      "completed",
      "prioritized",
      "waiting-children",
    ),
    queue.isPaused(),
  ]);
  const n = (k: string) => c[k] ?? 0;
  const waiting = n("waiting");
  const prioritized = n("prioritized");
  return {
    waiting,
    active: n("active"),
    delayed: n("delayed"),
    failed: n("failed"),
    completed: n("completed"),
    prioritized,
    waitingChildren: n("waiting-children"),
    paused: isPaused ? waiting + prioritized : 0,
    isPaused,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Counts for the given queues, keyed by queue name; rejects after timeoutMs (e.g. Redis is down). */
export async function countQueues(
  queues: ReadonlyMap<QueueName, Queue> | ReadonlyArray<readonly [QueueName, Queue]>,
  timeoutMs = DEFAULT_COUNTS_TIMEOUT_MS,
): Promise<AllQueueCounts> {
  const entries = [...queues.entries()] as Array<[QueueName, Queue]>;
  const counted = await withTimeout(
    Promise.all(entries.map(async ([name, q]) => [name, await countQueue(q)] as const)),
    timeoutMs,
    "queue counts",
  );
  return Object.fromEntries(counted) as AllQueueCounts;
}

/**
 * Counts for every queue in ALL_QUEUES under `prefix` (used by `fiona status` and /api/status).
 * Uses the caller's connection and leaves it open. Rejects after timeoutMs when Redis does not answer.
 */
export async function getQueueCounts(
  connection: Redis,
  prefix: string,
  opts: { timeoutMs?: number } = {},
): Promise<AllQueueCounts> {
  const queues = new Map<QueueName, Queue>(
    ALL_QUEUES.map((name) => [name, createQueue(name, connection, prefix) as Queue]),
  );
  for (const q of queues.values()) q.on("error", () => {});
  try {
    return await countQueues(queues, opts.timeoutMs ?? DEFAULT_COUNTS_TIMEOUT_MS);
  } finally {
    // The connection is shared, so closing a queue does not close it.
    await Promise.allSettled([...queues.values()].map((q) => q.close()));
  }
}
