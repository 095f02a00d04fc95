import type { Job } from "bullmq";

/**
 * The one shape of every stage: built once per worker process from what it needs (its deps), then
 * called for each job with the job (its payload is job.data) and returning the job's result.
 */
export type Stage<Deps, Data, Result> = (deps: Deps) => StageHandler<Data, Result>;

export type StageHandler<Data, Result> = (
  job: Job<Data>,
  token?: string,
  signal?: AbortSignal,
) => Promise<Result>;
