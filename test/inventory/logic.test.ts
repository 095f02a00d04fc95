import { describe, expect, it } from "vitest";
import { inventorySchema } from "../../src/inventory/config.js";
import { bucketKey, splitBucket } from "../../src/inventory/buckets.js";
import { crawlProject } from "../../src/inventory/crawl.js";
import { reconcile, sentStudies } from "../../src/inventory/reconcile.js";
import { mergeStudies, studyFromMatch } from "../../src/inventory/studies.js";
import type { FindResult } from "../../src/dimse/find.js";
import type { TransferRecord } from "../../src/registry/transfers.js";

describe("inventory configuration", () => {
  it("parses an empty section with defaults and rejects wildcard bucket characters", () => {
    const c = inventorySchema.parse({});
    expect(c).toMatchObject({ enabled: false, bucketDepth: 3, pauseMs: 100, redcap: "whatIsInIds7" });
    expect(c.bucketAlphabet.startsWith("0123456789")).toBe(true);
    expect(inventorySchema.safeParse({ bucketAlphabet: "01*" }).success).toBe(false);
    expect(inventorySchema.safeParse({ bucketAlphabet: "001" }).success).toBe(false);
  });
});

describe("PatientID buckets", () => {
  it("splits by one more leading character of the suffix, down to the depth", () => {
    expect(bucketKey("")).toBe("");
    expect(bucketKey("07")).toBe("*07");
    expect(splitBucket("", "012", 2)).toEqual(["0", "1", "2"]);
    expect(splitBucket("7", "012", 2)).toEqual(["07", "17", "27"]);
    expect(splitBucket("07", "012", 2)).toEqual([]);
    expect(splitBucket("", "012", 0)).toEqual([]);
  });
});

/** A PACS over a list of (PatientID, StudyUID) that refuses answers above `limit`, sending the first ones. */
function pacs(studies: Array<[string, string]>, limit: number) {
  const asked: string[] = [];
  const query = (key: string): Promise<FindResult> => {
    asked.push(key);
    const suffix = key.replace(/^\*/, "");
    const hits = studies.filter(([pid]) => pid.endsWith(suffix));
    const matches = hits.slice(0, limit).map(([pid, uid]) => ({
      StudyInstanceUID: uid,
      PatientID: pid,
      InstitutionName: "P",
      NumberOfStudyRelatedSeries: 2,
    }));
    return Promise.resolve(
      hits.length > limit
        ? { status: "cancelled", statusCode: 0xfe00, matches }
        : { status: "success", statusCode: 0, matches },
    );
  };
  return { query, asked };
}

describe("crawl", () => {
  const studies: Array<[string, string]> = [
    ["P_011", "1.11"],
    ["P_021", "1.21"],
    ["P_031", "1.31"],
    ["P_002", "1.2"],
  ];

  it("splits refused queries until every bucket answers, listing each study once", async () => {
    const { query, asked } = pacs(studies, 2);
    const r = await crawlProject(query, "P", { alphabet: "0123", maxDepth: 3, pauseMs: 0 });
    expect(r.complete).toBe(true);
    expect(r.studies.map((s) => s.studyInstanceUid).sort()).toEqual(["1.11", "1.2", "1.21", "1.31"]);
    expect(r.studies.every((s) => s.numberOfSeries === 2)).toBe(true);
    // "" refused, then *0..*3 (only *1 refused), then *01..*31.
    expect(asked).toEqual(["", "*0", "*1", "*2", "*3", "*01", "*11", "*21", "*31"]);
    expect(r.queries).toBe(asked.length);
  });

  it("reports a bucket still refused at the maximum depth as incomplete", async () => {
    const { query } = pacs(studies, 2);
    const r = await crawlProject(query, "P", { alphabet: "0123", maxDepth: 1, pauseMs: 0 });
    expect(r.complete).toBe(false);
    expect(r.incompleteBuckets).toEqual(["*1"]);
  });

  it("drops matches of another project from a PACS that ignores InstitutionName", async () => {
    const query = (): Promise<FindResult> =>
      Promise.resolve({
        status: "success",
        statusCode: 0,
        matches: [
          { StudyInstanceUID: "1.1", InstitutionName: "OTHER" },
          { StudyInstanceUID: "1.2", InstitutionName: "P" },
          { StudyInstanceUID: "1.3" },
        ],
      });
    const r = await crawlProject(query, "P", { alphabet: "01", maxDepth: 1, pauseMs: 0 });
    expect(r.studies.map((s) => s.studyInstanceUid)).toEqual(["1.2", "1.3"]);
  });
});

describe("study records", () => {
  it("reads PN, multi-valued and numeric attributes, and merges duplicates without summing counts", () => {
    const a = studyFromMatch({
      StudyInstanceUID: "1.2.3",
      PatientName: [{ Alphabetic: "P_001" }],
      ModalitiesInStudy: ["MR", "SR"],
      NumberOfStudyRelatedSeries: 3,
      NumberOfStudyRelatedInstances: "40",
      StudyDescription: "",
    })!;
    expect(a).toEqual({
      studyInstanceUid: "1.2.3",
      patientName: "P_001",
      modalities: "MR\\SR",
      numberOfSeries: 3,
      numberOfInstances: 40,
    });
    expect(studyFromMatch({ PatientID: "x" })).toBeUndefined();
    const b = studyFromMatch({
      StudyInstanceUID: "1.2.3",
      NumberOfStudyRelatedSeries: 3,
      StudyDescription: "brain",
    })!;
    const merged = mergeStudies([a, b]);
    expect(merged).toHaveLength(1);
    expect(merged[0]).toMatchObject({ numberOfSeries: 3, numberOfInstances: 40, studyDescription: "brain" });
  });
});

describe("reconciliation", () => {
  const t = (id: string, over: Partial<TransferRecord>): TransferRecord => ({
    requestId: id,
    studyInstanceUid: `orig.${id}`,
    project: "P",
    participant: "P_001",
    requestedBy: "test",
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.000Z",
    runs: 1,
    status: "done",
    filesSent: 4,
    filesFailed: 0,
    filesDropped: 0,
    sourceFiles: 4,
    ...over,
  });

  it("flags sent studies gone from the PACS and PACS studies FIONA never sent", () => {
    const sent = sentStudies(
      [
        t("a", { pseudoStudyInstanceUid: "2.1" }),
        t("b", { pseudoStudyInstanceUid: "2.2" }),
        t("c", { pseudoStudyInstanceUid: "2.2", event: "followup", updatedAt: "2026-02-01T00:00:00.000Z" }),
        t("d", { pseudoStudyInstanceUid: "2.9", status: "failed", filesSent: 0 }),
        t("e", { pseudoStudyInstanceUid: "2.8", project: "OTHER" }),
      ],
      "P",
    );
    expect(sent.map((s) => s.studyInstanceUid)).toEqual(["2.1", "2.2"]);
    expect(sent[1]).toMatchObject({ requestIds: ["b", "c"], sentAt: "2026-02-01T00:00:00.000Z" });
    const r = reconcile(
      {
        project: "P",
        crawledAt: "2026-03-01T00:00:00.000Z",
        complete: true,
        studies: [{ studyInstanceUid: "2.2" }, { studyInstanceUid: "3.1", patientId: "X" }],
      },
      sent,
    );
    expect(r.missingInPacs.map((s) => s.studyInstanceUid)).toEqual(["2.1"]);
    expect(r.notSentByFiona.map((s) => s.studyInstanceUid)).toEqual(["3.1"]);
    expect(r).toMatchObject({ pacsStudies: 2, sentStudies: 2, complete: true });
  });
});
