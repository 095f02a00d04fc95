import { createHmac, randomInt } from "node:crypto";
import type { Redis } from "ioredis";
import { allIds, parseIdPattern, randomId, type IdPattern } from "../routing/autoid.js";
import { withLock } from "./lock.js";

/** The project fields auto-ID needs (a ProjectConfig fits). */
export interface AutoIdProject {
  name: string;
  participantPattern?: string;
  autoId?: { aeTitle: string; pattern: string };
}

export class AutoIdError extends Error {
  override name = "AutoIdError";
}

/** Every ID of the project's pattern has been issued. */
export class AutoIdExhaustedError extends AutoIdError {
  override name = "AutoIdExhaustedError";
}

/** Spaces up to this size are enumerated once they are half full, so exhaustion is detected exactly. */
const ENUMERATE_LIMIT = 100_000;
/** Random draws before concluding that a (large) space is exhausted or nearly so. */
const RANDOM_DRAWS = 64;

const patterns = new Map<string, IdPattern>();
const enumerated = new Map<string, string[]>();
function pattern(source: string): IdPattern {
  let p = patterns.get(source);
  if (!p) {
    p = parseIdPattern(source);
    patterns.set(source, p);
  }
  return p;
}

/**
 * Auto-ID state in Redis, per project:
 * - a set of every ID issued (claimed atomically with SADD, never removed, so an ID is never reused);
 * - a hash from HMAC-SHA256(site secret, project NUL PatientID) to the ID, so the same patient always
 *   gets the same ID while neither the PatientID nor a plain hash of it is stored.
 */
export class AutoIdRegistry {
  private readonly base: string;
  private readonly lockBase: string;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly secret: string | undefined,
  ) {
    this.base = `${prefix}:routing:autoid`;
    this.lockBase = `${prefix}:lock:autoid`;
  }

  private issuedKey = (project: string) => `${this.base}:${encodeURIComponent(project)}:issued`;
  private mapKey = (project: string) => `${this.base}:${encodeURIComponent(project)}:map`;

  /** The keyed digest that stands for a patient in one project. */
  patientKey(project: string, patientId: string): string {
    if (!this.secret) throw new AutoIdError('auto-ID needs the site secret (config "secret")');
    return createHmac("sha256", this.secret).update(`${project}\0${patientId.trim()}`).digest("hex");
  }

  /** The patient's ID in the project if one was issued. */
  async lookup(project: string, patientId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.mapKey(project), this.patientKey(project, patientId))) ?? undefined;
  }

  /**
   * The patient's participant ID in the project: the one issued before, or a new random one. Safe
   * across processes: a lock per (project, patient) makes concurrent callers agree on one ID.
   */
  async idFor(project: AutoIdProject, patientId: string): Promise<{ participant: string; created: boolean }> {
    if (!project.autoId) throw new AutoIdError(`project ${project.name} has no autoId settings`);
    if (!patientId.trim()) throw new AutoIdError("the study has no PatientID, so it cannot get an auto-ID");
    const field = this.patientKey(project.name, patientId);
    const known = await this.redis.hget(this.mapKey(project.name), field);
    if (known !== null) return { participant: known, created: false };
    return withLock(
      this.redis,
      `${this.lockBase}:${encodeURIComponent(project.name)}:${field.slice(0, 32)}`,
      async () => {
        const again = await this.redis.hget(this.mapKey(project.name), field);
        if (again !== null) return { participant: again, created: false };
        const id = await this.claim(project);
        // HSETNX as well: should a lock lease ever lapse, the first mapping still wins.
        if ((await this.redis.hsetnx(this.mapKey(project.name), field, id)) === 1)
          return { participant: id, created: true };
        return { participant: (await this.redis.hget(this.mapKey(project.name), field))!, created: false };
      },
      { ttlMs: 30_000 },
    );
  }

  /** A fresh ID linked to no patient (e.g. for a manual assignment of a new participant). */
  async issue(project: AutoIdProject): Promise<string> {
    if (!project.autoId) throw new AutoIdError(`project ${project.name} has no autoId settings`);
    return this.claim(project);
  }

  /** Mark IDs given out by other means (coupling list, Assign page) as used, so auto-ID never draws them. */
  async reserve(project: string, ids: readonly string[]): Promise<void> {
    if (ids.length) await this.redis.sadd(this.issuedKey(project), ...ids);
  }

  /** Every patient mapping of the project: keyed hash -> participant ID (no PatientID). */
  async mappings(project: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.mapKey(project));
  }

  /** Number of IDs issued or reserved in the project. */
  async issuedCount(project: string): Promise<number> {
    return this.redis.scard(this.issuedKey(project));
  }

  /** Draw an unused ID and claim it (SADD returns 1 for exactly one claimant). */
  private async claim(project: AutoIdProject): Promise<string> {
    const p = pattern(project.autoId!.pattern);
    const check = participantCheck(project);
    const key = this.issuedKey(project.name);
    const issued = await this.redis.scard(key);
    if (p.size > BigInt(ENUMERATE_LIMIT) || BigInt(issued) * 2n < p.size) {
      for (let i = 0; i < RANDOM_DRAWS; i++) {
        const id = check(randomId(p));
        if ((await this.redis.sadd(key, id)) === 1) return id;
      }
      if (p.size > BigInt(ENUMERATE_LIMIT)) {
        throw new AutoIdExhaustedError(
          `project ${project.name}: no free ID in ${RANDOM_DRAWS} random draws from ${p.source} ` +
            `(${issued} of ${p.size} issued); the pattern's space is (nearly) exhausted, widen the pattern`,
        );
      }
    }
    let all = enumerated.get(p.source);
    if (!all) {
      all = allIds(p, ENUMERATE_LIMIT);
      enumerated.set(p.source, all);
    }
    for (;;) {
      const free: string[] = [];
      for (let i = 0; i < all.length; i += 10_000) {
        const chunk = all.slice(i, i + 10_000);
        const used = await this.redis.smismember(key, ...chunk);
        chunk.forEach((id, j) => {
          if (!used[j]) free.push(id);
        });
      }
      if (free.length === 0) {
        throw new AutoIdExhaustedError(
          `project ${project.name}: every ID of ${p.source} has been issued (${all.length}); widen the pattern`,
        );
      }
      // Random order, so concurrent claimants rarely collide; a lost race moves on to the next one.
      for (let n = free.length; n > 0; n--) {
        const j = randomInt(n);
        const id = check(free[j]!);
        free[j] = free[n - 1]!;
        if ((await this.redis.sadd(key, id)) === 1) return id;
      }
    }
  }
}

/** Throws when a generated ID would not pass the project's participant checks (a configuration error). */
function participantCheck(project: AutoIdProject): (id: string) => string {
  const re = project.participantPattern ? new RegExp(`^(?:${project.participantPattern})$`) : undefined;
  return (id) => {
    if (re && !re.test(id)) {
      throw new AutoIdError(
        `project ${project.name}: autoId pattern ${project.autoId!.pattern} produced an ID that does not match ` +
          `participantPattern ${project.participantPattern}; make the two agree`,
      );
    }
    return id;
  };
}
