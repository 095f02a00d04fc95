/** Unit tests: UID recipes (with the reference 1.4 legacy vectors), date shifting, project schema. */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { dateOffsetFor, mapUid, projectDeidSchema, shiftDateValue } from "../../src/deid/index.js";
import { blankRectangles } from "../../src/deid/pixels.js";
import { SECRET } from "./helpers.js";

const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

describe("mapUid (hmac)", () => {
  it("is 2.25.<decimal of the first 128 bits of HMAC-SHA256(secret, project NUL uid)>", () => {
    const uid = "1.2.826.0.1.3680043.2.1125.1.42";
    const mac = createHmac("sha256", SECRET)
      .update("PROJ\u0000" + uid)
      .digest();
    const expected = `2.25.${BigInt(`0x${mac.subarray(0, 16).toString("hex")}`)}`;
    expect(mapUid(uid, "PROJ", SECRET)).toBe(expected);
    // trailing pad bytes and spaces do not change the mapping
    expect(mapUid(`${uid}\u0000`, "PROJ", SECRET)).toBe(expected);
    expect(mapUid(` ${uid} `, "PROJ", SECRET)).toBe(expected);
  });

  it("is a valid UID of at most 64 characters without leading zeros, stable and keyed", () => {
    for (let i = 0; i < 2000; i++) {
      const uid = mapUid(`1.2.3.${i}`, "PROJ", SECRET);
      expect(uid).toMatch(UID_RE);
      expect(uid.length).toBeLessThanOrEqual(64);
      expect(uid.startsWith("2.25.")).toBe(true);
    }
    const a = mapUid("1.2.3.4", "PROJ", SECRET);
    expect(mapUid("1.2.3.4", "PROJ", SECRET)).toBe(a);
    expect(mapUid("1.2.3.4", "OTHER", SECRET)).not.toBe(a);
    expect(mapUid("1.2.3.4", "PROJ", `${SECRET}x`)).not.toBe(a);
  });

  it("never maps DICOM-defined UIDs", () => {
    expect(mapUid("1.2.840.10008.5.1.4.1.1.4", "PROJ", SECRET)).toBe("1.2.840.10008.5.1.4.1.1.4");
    expect(mapUid("1.2.840.10008.1.2.1", "PROJ", SECRET, "fiona-legacy")).toBe("1.2.840.10008.1.2.1");
  });

  it("refuses an empty secret in hmac mode", () => {
    expect(() => mapUid("1.2.3", "PROJ", "")).toThrow(/secret/);
  });
});

describe("mapUid (fiona-legacy), reference 1.4 vectors for project PROJ", () => {
  it("SOPInstanceUID 1.2.3.4.5.6.7 (odd, hashed with its NUL pad)", () => {
    expect(mapUid("1.2.3.4.5.6.7", "PROJ", "", "fiona-legacy")).toBe(
      "1.3.6.1.4.1.45037.842986011114628520272412552124041481561242713",
    );
  });
  it("StudyInstanceUID 1.2.3.4.5 (odd, hashed without NUL)", () => {
    expect(mapUid("1.2.3.4.5", "PROJ", "", "fiona-legacy", "study")).toBe(
      "1.3.6.1.4.1.45037.300542716042123246925719515377418515396641215",
    );
  });
  it("is cut to 63 characters", () => {
    expect(mapUid("1.2.3.4.5.6.7", "PROJ", "", "fiona-legacy")).toHaveLength(63);
  });
});

describe("shiftDateValue", () => {
  it("shifts DA with calendar arithmetic", () => {
    expect(shiftDateValue("20200229", 30)).toBe("20200330");
    expect(shiftDateValue("20200101", -1)).toBe("20191231");
    expect(shiftDateValue("20240102", 0)).toBe("20240102");
    expect(shiftDateValue("19991231 ", 1)).toBe("20000101");
  });
  it("shifts DT keeping time, fraction and zone", () => {
    expect(shiftDateValue("20200115103000.000000+0100", 30)).toBe("20200214103000.000000+0100");
    expect(shiftDateValue("20200115103000-0500", -15)).toBe("20191231103000-0500");
    expect(shiftDateValue("2020011510", 1)).toBe("2020011610");
  });
  it("keeps partial dates partial", () => {
    expect(shiftDateValue("2020", -1)).toBe("2019");
    expect(shiftDateValue("2020", 30)).toBe("2020");
    expect(shiftDateValue("202003", -1)).toBe("202002");
    expect(shiftDateValue("2020+0100", -1)).toBe("2019+0100");
  });
  it("accepts the ACR-NEMA form and multiple values", () => {
    expect(shiftDateValue("2020.01.15", 1)).toBe("20200116");
    expect(shiftDateValue("20200101\\20200201", 1)).toBe("20200102\\20200202");
  });
  it("rejects what it cannot parse (the engine then empties the value)", () => {
    for (const bad of ["20200230", "2020-01-15", "abc", "20201", "20201301", "20200115xx", "0000"]) {
      expect(shiftDateValue(bad, 10), bad).toBeUndefined();
    }
    expect(shiftDateValue("20200101\\garbage", 1)).toBeUndefined();
    expect(shiftDateValue("99991231", 1)).toBeUndefined();
  });
});

describe("project schema and date offset", () => {
  it("fills defaults", () => {
    const p = projectDeidSchema.parse({ name: "TOBE" });
    expect(p.profile).toBe("fiona");
    expect(p.uidMode).toBe("hmac");
    expect(p.privateTags).toBe("remove");
    expect(p.features.burnedIn).toBe("clean");
  });
  it("rejects unknown override attributes and bad names", () => {
    expect(() => projectDeidSchema.parse({ name: "X", overrides: { NoSuchKeyword: "keep" } })).toThrow(
      /unknown attribute/,
    );
    expect(() => projectDeidSchema.parse({ name: "A\\B" })).toThrow();
    expect(
      projectDeidSchema.parse({ name: "X", overrides: { "0008,1030": "keep", SeriesDescription: "remove" } }),
    ).toBeTruthy();
  });
  it("derives a stable offset inside the configured range, or uses the fixed one", () => {
    const range = { min: -100, max: -50 };
    const a = dateOffsetFor({ name: "P1", dateOffsetRange: range }, SECRET);
    expect(a).toBeGreaterThanOrEqual(-100);
    expect(a).toBeLessThanOrEqual(-50);
    expect(dateOffsetFor({ name: "P1", dateOffsetRange: range }, SECRET)).toBe(a);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add(dateOffsetFor({ name: `P${i}`, dateOffsetRange: range }, SECRET));
    expect(seen.size).toBeGreaterThan(10);
    expect(dateOffsetFor({ name: "P1", dateOffsetDays: 42 }, SECRET)).toBe(42);
  });
});

describe("blankRectangles", () => {
  it("fills 8-bit RGB interleaved and planar rectangles with 0, clipped to the image", () => {
    const geometry = { rows: 4, columns: 5, samplesPerPixel: 3, bitsAllocated: 8, frames: 2 };
    const interleaved = Buffer.alloc(4 * 5 * 3 * 2, 0xff);
    blankRectangles(interleaved, { ...geometry, planarConfiguration: 0 }, [
      { x: 3, y: 2, width: 10, height: 1 },
    ]);
    for (let f = 0; f < 2; f++) {
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 5; x++) {
          for (let s = 0; s < 3; s++) {
            const v = interleaved[f * 60 + (y * 5 + x) * 3 + s];
            expect(v).toBe(y === 2 && x >= 3 ? 0 : 0xff);
          }
        }
      }
    }
    const planar = Buffer.alloc(4 * 5 * 3, 0xff);
    blankRectangles(planar, { ...geometry, frames: 1, planarConfiguration: 1 }, [
      { x: 0, y: 0, width: 1, height: 1 },
    ]);
    expect([planar[0], planar[20], planar[40], planar[1], planar[21]]).toEqual([0, 0, 0, 0xff, 0xff]);
  });
});
