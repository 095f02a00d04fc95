import { describe, expect, it } from "vitest";
import { slideDataset, slideStudyId, type SlideIdentityInput } from "../../src/wsi/identity.js";
import { ctx, deid, parse, readFile, tempDir, value } from "../deid/helpers.js";
import { generateStudy } from "../support/generate.js";

const base: SlideIdentityInput = {
  project: "PATH",
  participant: "PATH_0001",
  event: "baseline",
  uploadId: "u1",
  metadata: { block: "B1", biopsyNr: "7", slideNr: "2", biopsyId: "BX-9", stain: "HE" },
  completedAt: new Date("2026-12-03T09:08:07Z"),
  studyPer: "slide",
  siteSecret: "s3cret",
};

describe("slideDataset", () => {
  it("is deterministic and pseudonymized", () => {
    const a = slideDataset(base);
    expect(slideDataset(base)).toEqual(a);
    expect(a.patientId).toBe("PATH_0001");
    expect(a.patientName).toBe("PATH_0001");
    expect(a.institutionName).toBe("PATH");
    expect(a.referringPhysicianName).toBe("EventName:baseline");
    expect(a.studyId).toBe("B172");
    expect([a.studyDate, a.studyTime]).toEqual(["20261203", "090807"]);
    expect(a.studyInstanceUid).toMatch(/^2\.25\.\d{1,39}$/);
    expect(slideDataset({ ...base, siteSecret: "other" }).studyInstanceUid).not.toBe(a.studyInstanceUid);
  });

  it("makes a new study per slide, or one per request", () => {
    const other = { ...base, uploadId: "u2" };
    expect(slideDataset(other).studyInstanceUid).not.toBe(slideDataset(base).studyInstanceUid);
    const req = { ...base, studyPer: "request" as const };
    expect(slideDataset({ ...req, uploadId: "u2" }).studyInstanceUid).toBe(
      slideDataset(req).studyInstanceUid,
    );
    expect(slideDataset({ ...req, uploadId: "u2" }).seriesInstanceUid).not.toBe(
      slideDataset(req).seriesInstanceUid,
    );
  });

  it("keeps StudyID within SH's 16 characters", () => {
    const id = slideStudyId({ block: "x".repeat(16), slideNr: "1" }, "u");
    expect(id).toHaveLength(16);
    expect(slideStudyId({ block: "x".repeat(16), slideNr: "1" }, "u")).toBe(id);
  });

  it("names the participant exactly as the radiology path does", () => {
    const { dir, cleanup } = tempDir("fiona-wsi-identity");
    try {
      const study = generateStudy({ outDir: dir, seed: "wsi-identity", fileSize: 2048 });
      const radiology = parse(
        deid(readFile(study.files[0]!), ctx({ name: "PATH" }, { participant: base.participant })).bytes,
      ).dict;
      const slide = slideDataset(base);
      expect(slide.patientName).toBe(value(radiology, "00100010"));
      expect(slide.patientId).toBe(value(radiology, "00100020"));
    } finally {
      cleanup();
    }
  });
});
