import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema, type FionaConfig } from "../../src/config/schema.js";
import {
  AutoIdError,
  AutoIdExhaustedError,
  AutoIdRegistry,
  type AutoIdProject,
} from "../../src/registry/autoid.js";
import { allIds, idAt, IdPatternError, parseIdPattern, randomId } from "../../src/routing/autoid.js";
import { cleanup, testConfig } from "../support/env.js";

describe("ID patterns", () => {
  it.each([
    ["PROJ_[0-9]{4}", 10_000n, /^PROJ_[0-9]{4}$/],
    ["P_0\\d{4}", 10_000n, /^P_0[0-9]{4}$/],
    ["^[A-C][a-b0]{2}$", 27n, /^[A-C][ab0]{2}$/],
    ["S(01|02)-[0-9]{3}", 2000n, /^S(01|02)-[0-9]{3}$/],
    ["(?:X|Y)\\.[0-9]", 20n, /^[XY]\.[0-9]$/],
    ["([0-9]{2})_\\1", 100n, /^([0-9]{2})_\1$/],
    [".{2}", 62n * 62n, /^[0-9a-zA-Z]{2}$/],
    ["[-_a]", 3n, /^[-_a]$/],
  ])("%s has %d IDs and generates only matching ones", (source, size, re) => {
    const p = parseIdPattern(source);
    expect(p.size).toBe(size);
    for (let i = 0; i < 200; i++) expect(randomId(p)).toMatch(re);
  });

  it("maps indexes to distinct IDs (a bijection for distinct alternatives)", () => {
    const p = parseIdPattern("S(01|02)-[0-9]{2}");
    const all = allIds(p);
    expect(all).toHaveLength(200);
    expect(new Set(all).size).toBe(200);
    expect(idAt(p, 0n)).toBe("S01-00");
    expect(() => idAt(p, 200n)).toThrow(RangeError);
  });

  it("deduplicates overlapping alternatives when enumerating", () => {
    const p = parseIdPattern("(A|A)");
    expect(p.size).toBe(2n); // an upper bound
    expect(allIds(p)).toEqual(["A"]);
  });

  it.each([
    "P*",
    "P+",
    "P?",
    "P{1,3}",
    "[^a]",
    "(a",
    "a)",
    "a|b",
    "\\w",
    "\\s",
    "",
    "x{0}",
    "[z-a]",
    "[]",
    "(?=a)",
    "\\2(a)",
    "a{65}",
    "[a-z]{65}",
  ])("rejects %j with a clear error", (source) => {
    expect(() => parseIdPattern(source)).toThrow(IdPatternError);
  });

  it("is validated in the project configuration", () => {
    const ok = configSchema.safeParse({
      projects: [{ name: "P", autoId: { aeTitle: "PAUTO", pattern: "P[0-9]{3}" } }],
    });
    expect(ok.success).toBe(true);
    const bad = configSchema.safeParse({
      projects: [{ name: "P", autoId: { aeTitle: "PAUTO", pattern: "P[0-9]+" } }],
    });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain("fixed shape");
  });
});

describe("auto-ID registry", () => {
  let cfg: FionaConfig;
  let redis: Redis;
  const secret = "autoid-test-secret-0123456789";
  const project = (pattern: string, name = "AUTO", participantPattern?: string): AutoIdProject => ({
    name,
    autoId: { aeTitle: "AUTOAE", pattern },
    ...(participantPattern ? { participantPattern } : {}),
  });

  beforeAll(() => {
    cfg = testConfig();
    redis = new Redis(cfg.redis.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    if (cfg) await cleanup(cfg);
  });
  const registry = () => new AutoIdRegistry(redis, cfg.redis.prefix, secret);

  it("gives the same patient the same ID and different patients different IDs, across instances", async () => {
    const p = project("PROJ_[0-9]{4}", "SAME", "PROJ_[0-9]{4}");
    const a = await registry().idFor(p, "PATIENT-A");
    expect(a.created).toBe(true);
    expect(a.participant).toMatch(/^PROJ_[0-9]{4}$/);
    // A second registry instance (another process, or after a restart) sees the same state.
    const again = await registry().idFor(p, " PATIENT-A ");
    expect(again).toEqual({ participant: a.participant, created: false });
    const b = await registry().idFor(p, "PATIENT-B");
    expect(b.participant).not.toBe(a.participant);
    // The same patient in another project is another participant.
    const other = await registry().idFor({ ...p, name: "SAME2" }, "PATIENT-A");
    expect(other.created).toBe(true);
  });

  it("never issues an ID twice over many draws, from concurrent registries", async () => {
    const p = project("U[0-9]{3}", "MANY"); // 1000 IDs: the draws pass the half-full mark into enumeration
    const regs = [registry(), registry(), registry()];
    const ids = await Promise.all(
      Array.from({ length: 900 }, (_, i) => regs[i % 3]!.idFor(p, `patient-${i}`).then((r) => r.participant)),
    );
    expect(new Set(ids).size).toBe(900);
    expect(await registry().issuedCount("MANY")).toBe(900);
    // Concurrent requests for the same patient agree on one ID.
    const same = await Promise.all(regs.map((r) => r.idFor(p, "patient-x")));
    expect(new Set(same.map((s) => s.participant)).size).toBe(1);
    expect(same.filter((s) => s.created)).toHaveLength(1);
  });

  it("fails clearly when the pattern's space is exhausted", async () => {
    const p = project("A[0-1]", "TINY");
    const r = registry();
    const first = await r.idFor(p, "one");
    const second = await r.idFor(p, "two");
    expect(new Set([first.participant, second.participant])).toEqual(new Set(["A0", "A1"]));
    await expect(r.idFor(p, "three")).rejects.toThrow(AutoIdExhaustedError);
    await expect(r.idFor(p, "three")).rejects.toThrow(/every ID of A\[0-1\] has been issued/);
    // Known patients still get their ID.
    expect((await r.idFor(p, "one")).participant).toBe(first.participant);
  });

  it("never draws an ID reserved by a manual or coupling-list assignment", async () => {
    const p = project("R[0-2]", "RES");
    const r = registry();
    await r.reserve("RES", ["R0", "R2"]);
    expect((await r.idFor(p, "someone")).participant).toBe("R1");
    await expect(r.issue(p)).rejects.toThrow(AutoIdExhaustedError);
  });

  it("refuses without a secret, without a PatientID, and when the pattern disagrees with participantPattern", async () => {
    const p = project("Z[0-9]", "CHECKS", "Q[0-9]");
    await expect(new AutoIdRegistry(redis, cfg.redis.prefix, undefined).idFor(p, "x")).rejects.toThrow(
      /secret/,
    );
    await expect(registry().idFor(p, "  ")).rejects.toThrow(/no PatientID/);
    await expect(registry().idFor(p, "x")).rejects.toThrow(AutoIdError);
    await expect(registry().idFor(p, "x")).rejects.toThrow(/participantPattern/);
    expect(await registry().issuedCount("CHECKS")).toBe(0); // nothing was burnt
  });

  it("stores no PatientID in any Redis key or value", async () => {
    const pid = "REALPID-7f3a9c";
    const p = project("PHI_[0-9]{5}", "PHI");
    const { participant } = await registry().idFor(p, pid);
    expect(participant).toMatch(/^PHI_/);
    const keys = await redis.keys(`${cfg.redis.prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).not.toContain(pid);
      const type = await redis.type(key);
      const dump =
        type === "hash"
          ? JSON.stringify(await redis.hgetall(key))
          : type === "set"
            ? JSON.stringify(await redis.smembers(key))
            : type === "string"
              ? ((await redis.get(key)) ?? "")
              : "";
      expect(dump).not.toContain(pid);
    }
    // The mapping is keyed by a keyed digest: without the secret it cannot be recomputed.
    const field = registry().patientKey("PHI", pid);
    expect(field).toMatch(/^[0-9a-f]{64}$/);
    expect(field).not.toBe(
      new AutoIdRegistry(redis, cfg.redis.prefix, "another-secret-0123456789").patientKey("PHI", pid),
    );
  });
});
