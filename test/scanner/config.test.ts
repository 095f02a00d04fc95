import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";

describe("scanners configuration", () => {
  it("has defaults for everything (no file at all)", () => {
    expect(configSchema.parse({}).scanners).toEqual({
      mpps: { enabled: false, port: 4007 },
      list: [],
      giveUpHours: 24,
      recheckSeconds: 15,
      moveAgainSeconds: 60,
      queryTimeoutMs: 30_000,
      moveTimeoutMs: 600_000,
    });
  });

  it("rejects scanner names that could not be keys, duplicate names and bad AE titles", () => {
    const scanner = { name: "MR1", aeTitle: "MRSCANNER", host: "mr1", port: 104 };
    const parse = (list: unknown[]) => configSchema.safeParse({ scanners: { list } });
    expect(parse([scanner]).success).toBe(true);
    expect(parse([{ ...scanner, name: "../x" }]).success).toBe(false);
    expect(parse([{ ...scanner, name: "a:b" }]).success).toBe(false);
    expect(parse([scanner, scanner]).success).toBe(false);
    expect(parse([{ ...scanner, aeTitle: "WAY_TOO_LONG_AE_TITLE" }]).success).toBe(false);
  });
});
