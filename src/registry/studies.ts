import type { Redis } from "ioredis";
import { registryKeys } from "./keys.js";

/** One series as recorded when its study arrives (no patient data). */
export interface SeriesEntry {
  seriesInstanceUid: string;
  seriesNumber?: string;
  seriesDescription?: string;
  modality?: string;
  classifyType: string[];
  numFiles: number;
}

/** A study in the quarantine list. Patient name, ID and accession number are never stored here. */
export interface StudyEntry {
  studyInstanceUid: string;
  status: "receiving" | "arrived";
  firstSeenAt: string;
  lastSeenAt: string;
  callingAe?: string;
  calledAe?: string;
  peer?: string;
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  modalities: string[];
  arrivals: number;
  arrivedAt?: string;
  series: SeriesEntry[];
}

export interface StudyTouch {
  studyInstanceUid: string;
  callingAe: string;
  calledAe: string;
  peer: string;
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  modalities: string[];
}

export class StudyRegistry {
  private readonly keys;
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = registryKeys(prefix);
  }

  /** Record activity for a study: it appears with its first image; first values win. */
  async touch(t: StudyTouch, now = Date.now()): Promise<void> {
    const key = this.keys.study(t.studyInstanceUid);
    const firstWins: Array<[string, string | undefined]> = [
      ["studyInstanceUid", t.studyInstanceUid],
      ["firstSeenAt", new Date(now).toISOString()],
      ["callingAe", t.callingAe],
      ["calledAe", t.calledAe],
      ["peer", t.peer],
      ["studyDate", t.studyDate],
      ["studyTime", t.studyTime],
      ["studyDescription", t.studyDescription],
    ];
    const multi = this.redis.multi();
    for (const [field, value] of firstWins) if (value !== undefined) multi.hsetnx(key, field, value);
    multi.hset(key, "lastSeenMs", String(now), "status", "receiving");
    if (t.modalities.length) multi.sadd(`${key}:modalities`, ...t.modalities);
    multi.zadd(this.keys.studies, now, t.studyInstanceUid);
    await multi.exec();
  }

  /** Milliseconds since the study's last image, or undefined for an unknown study. */
  async lastSeenMs(studyUid: string): Promise<number | undefined> {
    const v = await this.redis.hget(this.keys.study(studyUid), "lastSeenMs");
    return v === null ? undefined : Number(v);
  }

  /** Mark the study arrived with its series list; returns the arrival count (1 for the first). */
  async recordArrival(studyUid: string, series: SeriesEntry[], now = Date.now()): Promise<number> {
    const key = this.keys.study(studyUid);
    const res = await this.redis
      .multi()
      .hincrby(key, "arrivals", 1)
      .hset(key, "status", "arrived", "arrivedAt", new Date(now).toISOString(), "series", JSON.stringify(series))
      .exec();
    return Number(res?.[0]?.[1] ?? 1);
  }

  async get(studyUid: string): Promise<StudyEntry | undefined> {
    const key = this.keys.study(studyUid);
    const [h, mods] = await Promise.all([this.redis.hgetall(key), this.redis.smembers(`${key}:modalities`)]);
    return h.studyInstanceUid ? toEntry(h, mods) : undefined;
  }

  /** Studies, most recently active first. */
  async list(limit = 1000): Promise<StudyEntry[]> {
    const uids = await this.redis.zrevrange(this.keys.studies, 0, limit - 1);
    const entries = await Promise.all(uids.map((u) => this.get(u)));
    return entries.filter((e): e is StudyEntry => e !== undefined);
  }
}

function toEntry(h: Record<string, string>, modalities: string[]): StudyEntry {
  const lastSeen = Number(h.lastSeenMs ?? 0);
  return {
    studyInstanceUid: h.studyInstanceUid!,
    status: h.status === "arrived" ? "arrived" : "receiving",
    firstSeenAt: h.firstSeenAt ?? new Date(lastSeen).toISOString(),
    lastSeenAt: new Date(lastSeen).toISOString(),
    callingAe: h.callingAe,
    calledAe: h.calledAe,
    peer: h.peer,
    studyDate: h.studyDate,
    studyTime: h.studyTime,
    studyDescription: h.studyDescription,
    modalities: modalities.sort(),
    arrivals: Number(h.arrivals ?? 0),
    arrivedAt: h.arrivedAt,
    series: h.series ? (JSON.parse(h.series) as SeriesEntry[]) : [],
  };
}
