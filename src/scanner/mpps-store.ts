/**
 * MPPS steps and pull outcomes in Redis, under the key prefix. A step is a JSON string of
 * {@link MppsStep} (identifiers only); a set per study lists its steps. Both expire after
 * scanners.giveUpHours plus a day, by which time every pull that could use them has ended.
 */
import type { Redis } from "ioredis";
import { MPPS_STATUS, MppsError, type MppsStep } from "./mpps-step.js";

const DAY_S = 24 * 3600;

export interface PullOutcome {
  studyInstanceUid: string;
  scanner: string;
  trigger: "mpps" | "manual";
  outcome: "complete" | "gave-up";
  startedAt: string;
  endedAt: string;
  /** Series the scanner listed, with what arrived and what was expected (when known). */
  series: Array<{ seriesInstanceUid: string; arrived: number; expected?: number; complete: boolean }>;
}

export class MppsStore {
  private readonly ttlS: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    giveUpHours: number,
  ) {
    this.ttlS = Math.ceil(giveUpHours * 3600) + DAY_S;
  }

  private stepKey = (sop: string) => `${this.prefix}:mpps:step:${sop}`;
  private studyKey = (study: string) => `${this.prefix}:mpps:study:${study}`;
  private outcomeKey = (study: string) => `${this.prefix}:scanner-pull:outcome:${study}`;

  /** Store a new step; throws MppsError(Duplicate SOP Instance) when it exists. */
  async create(step: MppsStep): Promise<void> {
    if (!(await this.write(step, "NX")))
      throw new MppsError(MPPS_STATUS.DuplicateSopInstance, "the step exists already");
  }

  /** Replace an existing step (after applySet). */
  async update(step: MppsStep): Promise<void> {
    if (!(await this.write(step, "XX"))) throw new MppsError(MPPS_STATUS.NoSuchSopInstance, "no such step");
  }

  /** The step and its study index in one transaction; false when the NX/XX condition failed. */
  private async write(step: MppsStep, condition: "NX" | "XX"): Promise<boolean> {
    const [key, value, multi] = [this.stepKey(step.sopInstanceUid), JSON.stringify(step), this.redis.multi()];
    if (condition === "NX") multi.set(key, value, "EX", this.ttlS, "NX");
    else multi.set(key, value, "EX", this.ttlS, "XX");
    for (const study of step.studyInstanceUids)
      multi.sadd(this.studyKey(study), step.sopInstanceUid).expire(this.studyKey(study), this.ttlS);
    const results = await multi.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new Error(`Redis: ${String(failed?.[0] ?? "transaction aborted")}`);
    return results[0]![1] === "OK";
  }

  async get(sopInstanceUid: string): Promise<MppsStep | undefined> {
    const raw = await this.redis.get(this.stepKey(sopInstanceUid));
    return raw === null ? undefined : (JSON.parse(raw) as MppsStep);
  }

  /** Every stored step of a study (several when a study was acquired in more than one step). */
  async forStudy(studyInstanceUid: string): Promise<MppsStep[]> {
    const sops = await this.redis.smembers(this.studyKey(studyInstanceUid));
    if (sops.length === 0) return [];
    const raws = await this.redis.mget(sops.map(this.stepKey));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as MppsStep);
  }

  async recordOutcome(outcome: PullOutcome): Promise<void> {
    await this.redis.set(this.outcomeKey(outcome.studyInstanceUid), JSON.stringify(outcome), "EX", 7 * DAY_S);
  }

  async outcome(studyInstanceUid: string): Promise<PullOutcome | undefined> {
    const raw = await this.redis.get(this.outcomeKey(studyInstanceUid));
    return raw === null ? undefined : (JSON.parse(raw) as PullOutcome);
  }
}
