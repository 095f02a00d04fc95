/**
 * Engine behaviour on generated studies: planted PHI, private tags, referential integrity, identity,
 * dates, overrides, profiles and the de-identification method attributes.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_PHI,
  PRIVATE_CREATORS,
  deterministicUid,
  element as el,
  generateStudy,
  type GeneratedStudy,
} from "../support/generate.js";
import { DeidError, deidentify, mapUid, dateOffsetFor, type ProjectDeidInput } from "../../src/deid/index.js";
import { ctx, deid, elementBytes, items, parse, readFile, tempDir, value, SECRET } from "./helpers.js";

const { dir, cleanup } = tempDir("deid-engine");
afterAll(cleanup);

/** Markers planted beyond the generator's defaults (top level, nested, unlisted PN attributes). */
const EXTRA = {
  evaluator: "PHIMARK^EVALUATOR", // (0014,2006) EvaluatorName: a PN neither profile lists
  reviewer: "PHIMARK^REVIEWER", // (0014,0104) SecondaryReviewerName inside a sequence nobody lists
  author: "PHIMARK^AUTHOR", // (0040,A067) two sequence levels down
  roiInterpreter: "PHIMARK^ROI", // (3006,00A6) unlisted PN, explicit VR, in the same nested item
  unknownPn: "PHIMARK^UNKNOWNPN", // (0009... no: (0018,99F0) a public tag no dictionary knows, VR PN
  comment: "PHIMARK_IMAGECOMMENT", // (0020,4000) ImageComments: FIONA keeps it, basic removes it
  history: "PHIMARK_HISTORY", // (0010,21B0) AdditionalPatientHistory: FIONA keeps it, basic removes it
  consulting: "PHIMARK^CONSULTING", // (0008,009C) ConsultingPhysicianName: basic profile Z
  nestedDate: "20240105", // AcquisitionDate inside a nested item
};

const PHI_MARKERS = [
  ...Object.values(DEFAULT_PHI),
  "PHIMARK_ISSUER_A",
  "PHIMARK_ISSUER_B",
  EXTRA.evaluator,
  EXTRA.reviewer,
  EXTRA.author,
  EXTRA.roiInterpreter,
  EXTRA.unknownPn,
  EXTRA.comment,
  EXTRA.history,
  EXTRA.consulting,
];

let study: GeneratedStudy;
let otherStudy: GeneratedStudy;
let referencedStudyUid: string;

beforeAll(() => {
  referencedStudyUid = deterministicUid("phi", "referenced-study");
  study = generateStudy({
    outDir: path.join(dir, "phi"),
    seed: "phi",
    modality: "MR",
    series: [
      {
        description: "t1_mprage_sag",
        instances: 2,
        extra: {
          "00142006": el("PN", { Alphabetic: EXTRA.evaluator }),
          "0008009C": el("PN", { Alphabetic: EXTRA.consulting }),
          "001021B0": el("LT", EXTRA.history),
          "00204000": el("LT", EXTRA.comment),
          "001899F0": el("PN", { Alphabetic: EXTRA.unknownPn }),
          "00080022": el("DA", "20240102"),
          "0008002A": el("DT", "20240102101500.123456+0100"),
          "00400260": el("SQ", {
            "00080100": el("SH", "P1"),
            "00080102": el("SH", "99FIONA"),
            "00080104": el("LO", "Protocol"),
            "00140104": el("PN", { Alphabetic: EXTRA.reviewer }),
            "300600A6": el("PN", { Alphabetic: EXTRA.roiInterpreter }),
            "00081250": el("SQ", {
              "00080022": el("DA", EXTRA.nestedDate),
              "0020000D": el("UI", referencedStudyUid),
              "0040A067": el("PN", { Alphabetic: EXTRA.author }),
            }),
          }),
        },
      },
    ],
  });
  otherStudy = generateStudy({
    outDir: path.join(dir, "other"),
    seed: "other",
    modality: "CT",
    instancesPerSeries: 1,
  });
});

function markersIn(bytes: Buffer): string[] {
  return PHI_MARKERS.filter((m) => bytes.indexOf(Buffer.from(m, "latin1")) !== -1);
}

function originalUids(s: GeneratedStudy): string[] {
  return [s.studyInstanceUid, ...s.seriesInstanceUids, ...s.sopInstanceUids, referencedStudyUid];
}

describe("planted PHI", () => {
  it("sanity: every marker is in the input", () => {
    const input = readFile(study.files[0]!);
    expect(markersIn(input)).toEqual(PHI_MARKERS);
    expect(input.indexOf(DEFAULT_PHI.patientBirthDate)).toBeGreaterThan(0);
  });

  it("fiona profile: no marker survives except what FIONA's list keeps on purpose", () => {
    // Exceptions, each kept by an explicit "keep" row of fiona-deid-profile.csv:
    //  - ImageComments (0020,4000): FIONA keeps image comments verbatim.
    //  - AdditionalPatientHistory (0010,21B0): FIONA keeps patient characteristics/history.
    const exceptions = [EXTRA.comment, EXTRA.history];
    for (const file of study.files) {
      const out = deid(readFile(file), ctx({ name: "PHIPROJ" })).bytes;
      expect(markersIn(out)).toEqual(exceptions);
      expect(out.indexOf(DEFAULT_PHI.patientBirthDate)).toBe(-1);
      for (const uid of originalUids(study)) expect(out.indexOf(uid), uid).toBe(-1);
    }
  });

  it("basic profile: no marker survives at all", () => {
    for (const file of study.files) {
      const out = deid(readFile(file), ctx({ name: "PHIPROJ", profile: "basic" })).bytes;
      expect(markersIn(out)).toEqual([]);
      expect(out.indexOf(DEFAULT_PHI.patientBirthDate)).toBe(-1);
      for (const uid of originalUids(study)) expect(out.indexOf(uid), uid).toBe(-1);
    }
  });

  it("private tags kept: only the private copies survive (the project chose to keep private data verbatim)", () => {
    // Exceptions besides FIONA's kept comments: the generator copies the patient name into private
    // (0009,1005) and the patient ID into (0009,1005) of the private sequence (0009,1010); both are
    // private elements, copied byte for byte because the project keeps private tags.
    const out = deid(readFile(study.files[0]!), ctx({ name: "PHIPROJ", privateTags: "keep" })).bytes;
    expect(markersIn(out)).toEqual([
      DEFAULT_PHI.patientName,
      DEFAULT_PHI.patientId,
      EXTRA.comment,
      EXTRA.history,
    ]);
    // The public PatientID inside the private sequence item was replaced by the participant.
    const seq = items(parse(out).dict, "00091010");
    expect(value(seq[0]!, "00100020")).toBe("SUBJ_0001");
    expect(value(seq[0]!, "00091005")).toBe(DEFAULT_PHI.patientId);
  });

  it("removes the listed sequences and empties unlisted PN attributes at every depth", () => {
    const { dict } = parse(deid(readFile(study.files[0]!), ctx({ name: "PHIPROJ" })).bytes);
    for (const gone of ["00101002", "00400275", "00081110", "00081050", "00080081", "00101040", "00081010"]) {
      expect(dict[gone], gone).toBeUndefined();
    }
    expect(value(dict, "00081070")).toBe(""); // OperatorsName: Type 2 in RT Series, so emptied
    expect(value(dict, "00142006")).toBe("");
    expect(value(dict, "0008009C")).toBe("");
    expect(value(dict, "001899F0")).toBe("");
    const item = items(dict, "00400260")[0]!;
    expect(value(item, "00140104")).toBe("");
    expect(value(item, "300600A6")).toBe("");
    expect(value(item, "00080100")).toBe("P1");
    const nested = items(item, "00081250")[0]!;
    expect(value(nested, "0040A067")).toBe("");
    // nested UIDs and dates are mapped/shifted like top-level ones
    expect(value(nested, "0020000D")).toBe(mapUid(referencedStudyUid, "PHIPROJ", SECRET));
    const offset = dateOffsetFor({ name: "PHIPROJ" }, SECRET);
    const shifted = new Date(Date.UTC(2024, 0, 5) + offset * 86_400_000)
      .toISOString()
      .slice(0, 10)
      .replace(/-/g, "");
    expect(value(nested, "00080022")).toBe(shifted);
  });
});

describe("private tags", () => {
  const privateKeys = (d: Record<string, unknown>) =>
    Object.keys(d).filter((k) => parseInt(k.slice(0, 4), 16) % 2 === 1);

  it("are removed by default, nested ones included", () => {
    const { dict } = parse(deid(readFile(study.files[0]!), ctx({ name: "P" })).bytes);
    expect(privateKeys(dict)).toEqual([]);
    for (const item of items(dict, "00400260")) expect(privateKeys(item)).toEqual([]);
  });

  it.each(["explicit-le", "implicit-le", "explicit-be"] as const)(
    "are copied byte for byte with their VR when kept (%s)",
    (transferSyntax) => {
      const s = generateStudy({
        outDir: path.join(dir, `priv-${transferSyntax}`),
        seed: "priv",
        transferSyntax,
      });
      const input = readFile(s.files[0]!);
      const out = deid(input, ctx({ name: "P", privateTags: "keep" })).bytes;
      for (const tag of [
        "00090010",
        "00091001",
        "00091002",
        "00091003",
        "00091004",
        "00091005",
        "00290010",
        "00291010",
      ]) {
        const original = elementBytes(input, tag);
        expect(out.indexOf(original), tag).toBeGreaterThan(0);
      }
      const { dict } = parse(out);
      expect(dict["00091002"]?.vr).toBe(
        transferSyntax === "implicit-le" ? parse(input).dict["00091002"]?.vr : "US",
      );
      expect(value(dict, "00290010")).toBe(PRIVATE_CREATORS.csa);
      // Private items keep their private elements; the nested public SQ stays.
      const seq = items(dict, "00091010");
      expect(seq).toHaveLength(2);
      expect(value(seq[1]!, "00091001")).toBe("item 2 private");
    },
  );
});

describe("referential integrity", () => {
  it("a reference in a nested sequence points at the referenced file's new SOPInstanceUID", () => {
    const target = study.files[1]!;
    const targetSop = study.sopInstanceUids[1]!;
    const ps = generateStudy({
      outDir: path.join(dir, "ps"),
      seed: "ps",
      modality: "SC",
      studyInstanceUid: study.studyInstanceUid,
      series: [
        {
          description: "presentation-like",
          instances: 1,
          extra: {
            "00081115": el("SQ", {
              "0020000E": el("UI", study.seriesInstanceUids[0]),
              "00081140": el("SQ", {
                "00081150": el("UI", study.sopClassUid),
                "00081155": el("UI", targetSop),
              }),
            }),
            "00081140": el("SQ", {
              "00081150": el("UI", study.sopClassUid),
              "00081155": el("UI", targetSop),
            }),
          },
        },
      ],
    });
    const project: ProjectDeidInput = { name: "REFPROJ" };
    const targetOut = deid(readFile(target), ctx(project));
    const psOut = deid(readFile(ps.files[0]!), ctx(project));
    const { dict } = parse(psOut.bytes);
    const series = items(dict, "00081115")[0]!;
    expect(value(series, "0020000E")).toBe(targetOut.seriesInstanceUid);
    expect(value(items(series, "00081140")[0]!, "00081155")).toBe(targetOut.sopInstanceUid);
    expect(value(items(series, "00081140")[0]!, "00081150")).toBe(study.sopClassUid);
    expect(value(items(dict, "00081140")[0]!, "00081155")).toBe(targetOut.sopInstanceUid);
    expect(psOut.studyInstanceUid).toBe(targetOut.studyInstanceUid);
    expect(value(parse(targetOut.bytes).meta, "00020003")).toBe(targetOut.sopInstanceUid);
  });

  it("all files of a study share the new study UID, frame of reference and StudyID; projects differ", () => {
    const a = study.files.map((f) => parse(deid(readFile(f), ctx({ name: "A" })).bytes).dict);
    expect(value(a[0]!, "0020000D")).toBe(value(a[1]!, "0020000D"));
    expect(value(a[0]!, "00200052")).toBe(value(a[1]!, "00200052"));
    expect(value(a[0]!, "00200010")).toBe(value(a[1]!, "00200010"));
    expect(value(a[0]!, "00080018")).not.toBe(value(a[1]!, "00080018"));
    const b = parse(deid(readFile(study.files[0]!), ctx({ name: "B" })).bytes).dict;
    expect(value(b, "0020000D")).not.toBe(value(a[0]!, "0020000D"));
    expect(value(a[0]!, "0020000D")).toBe(mapUid(study.studyInstanceUid, "A", SECRET));
  });
});

describe("identity, dates and the de-identification attributes", () => {
  it("writes the participant, project, event and clinical-trial attributes", () => {
    const { dict } = parse(
      deid(readFile(study.files[0]!), ctx({ name: "TOBE" }, { participant: "TOBE_0022", event: "month6" }))
        .bytes,
    );
    expect(value(dict, "00100010")).toBe("TOBE_0022");
    expect(value(dict, "00100020")).toBe("TOBE_0022");
    expect(value(dict, "00080080")).toBe("TOBE");
    expect(value(dict, "00080090")).toBe("EventName:month6");
    expect(value(dict, "00120010")).toBe("TOBE");
    expect(value(dict, "00120020")).toBe("TOBE");
    expect(value(dict, "00120021")).toBe("TOBE");
    expect(value(dict, "00120040")).toBe("TOBE_0022");
    expect(value(dict, "00120050")).toBe("month6");
    expect(value(dict, "00120051")).toBe("month6");
    expect(value(dict, "00120062")).toBe("YES");
    expect(value(dict, "00280303")).toBe("MODIFIED");
    expect(value(dict, "00100030")).toBe("");
    expect(value(dict, "00100040")).toBe("O");
    expect(value(dict, "00080050")).toMatch(/^\d{16}$/);
    expect(value(dict, "00200010")).toBe(value(dict, "0020000D")!.slice(5, 21));
  });

  it("without event: empty ReferringPhysicianName and time point, no time point description", () => {
    const { dict } = parse(
      deid(readFile(study.files[0]!), ctx({ name: "TOBE" }, { event: undefined })).bytes,
    );
    expect(value(dict, "00080090")).toBe("");
    expect(value(dict, "00120050")).toBe("");
    expect(dict["00120051"]).toBeUndefined();
  });

  it("shifts DA and DT (zone kept), keeps times, empties an invalid date", () => {
    const s = generateStudy({
      outDir: path.join(dir, "dates"),
      seed: "dates",
      studyDate: "20240131",
      series: [
        {
          instances: 1,
          extra: {
            "00080022": el("DA", "20200230"), // impossible date
            "0008002A": el("DT", "20240131235959.5+0130"),
            "00080012": el("DA", "2024"), // partial (not valid DA, but seen in the wild)
          },
        },
      ],
    });
    const { dict } = parse(deid(readFile(s.files[0]!), ctx({ name: "D", dateOffsetDays: 30 })).bytes);
    expect(value(dict, "00080020")).toBe("20240301");
    expect(value(dict, "00080021")).toBe("20240301");
    expect(value(dict, "00080022")).toBe("");
    expect(dict["00080022"]).toBeDefined();
    expect(value(dict, "0008002A")).toBe("20240301235959.5+0130");
    expect(value(dict, "00080012")).toBe("2024");
    expect(value(dict, "00080030")).toBe("101500");
    expect(value(dict, "00100030")).toBe("");
    const kept = parse(
      deid(readFile(s.files[0]!), ctx({ name: "D", dateOffsetDays: 30, keepBirthDate: true })).bytes,
    ).dict;
    expect(value(kept, "00100030")).toBe("19010305");
    const full = parse(
      deid(readFile(s.files[0]!), ctx({ name: "D", options: { retainLongitudinalFullDates: true } })).bytes,
    ).dict;
    expect(value(full, "00080020")).toBe("20240131");
    expect(value(full, "00280303")).toBe("UNMODIFIED");
  });

  it("DeidentificationMethodCodeSequence holds valid DCM codes for what was applied", () => {
    const codes = (project: ProjectDeidInput) => {
      const { dict } = parse(deid(readFile(study.files[0]!), ctx(project)).bytes);
      return items(dict, "00120064").map((item) => {
        expect(value(item, "00080102")).toBe("DCM");
        expect(value(item, "00080104")!.length).toBeGreaterThan(10);
        return value(item, "00080100");
      });
    };
    expect(codes({ name: "C" })).toEqual(["113100", "113107", "113108", "113109"]);
    expect(codes({ name: "C", privateTags: "keep" })).toEqual([
      "113100",
      "113107",
      "113108",
      "113109",
      "113111",
    ]);
    expect(codes({ name: "C", profile: "basic" })).toEqual(["113100"]);
    expect(
      codes({
        name: "C",
        profile: "basic",
        options: {
          retainLongitudinalModifiedDates: true,
          retainInstitutionIdentity: true,
          cleanDescriptors: true,
        },
      }),
    ).toEqual(["113100", "113105", "113107", "113112"]);
    const { dict } = parse(deid(readFile(study.files[0]!), ctx({ name: "C" })).bytes);
    expect(value(dict, "00120063")).toContain("fiona profile");
  });
});

describe("profiles and overrides", () => {
  it("basic removes the descriptions and comments FIONA keeps; options retain what they name", () => {
    const fiona = parse(deid(readFile(study.files[0]!), ctx({ name: "P" })).bytes).dict;
    const basic = parse(deid(readFile(study.files[0]!), ctx({ name: "P", profile: "basic" })).bytes).dict;
    for (const tag of ["00081030", "0008103E", "00204000", "001021B0", "00101010"]) {
      expect(fiona[tag], tag).toBeDefined();
      expect(basic[tag], tag).toBeUndefined();
    }
    expect(value(fiona, "00181030")).toBe("t1_mprage_sag");
    expect(value(basic, "00181030")).toBe("ANONYMIZED"); // ProtocolName: D (dummy)
    expect(value(basic, "00080020")).toBe(""); // StudyDate: Z without a temporal option
    expect(value(basic, "00080030")).toBe("");
    expect(value(basic, "00280303")).toBe("REMOVED");
    expect(value(basic, "00100040")).toBe(""); // PatientSex: Z
    const retained = parse(
      deid(
        readFile(study.files[0]!),
        ctx({
          name: "P",
          profile: "basic",
          options: { retainPatientCharacteristics: true, retainLongitudinalModifiedDates: true },
        }),
      ).bytes,
    ).dict;
    expect(value(retained, "00101010")).toBe("040Y");
    expect(value(retained, "00100040")).toBe("O");
    expect(value(retained, "00080030")).toBe("101500");
    expect(value(retained, "00080020")).toBe(value(fiona, "00080020"));
  });

  it("clean descriptors keeps descriptions without the patient's identifiers", () => {
    const s = generateStudy({
      outDir: path.join(dir, "clean"),
      seed: "clean",
      series: [{ description: `t1 ${DEFAULT_PHI.patientId} patientname`, instances: 1 }],
    });
    const { dict } = parse(
      deid(readFile(s.files[0]!), ctx({ name: "P", profile: "basic", options: { cleanDescriptors: true } }))
        .bytes,
    );
    expect(value(dict, "0008103E")).toBe("t1");
    expect(value(dict, "00081030")).toBe("FIONA synthetic MR");
  });

  it("applies single-attribute overrides by keyword and by tag", () => {
    const { dict } = parse(
      deid(
        readFile(study.files[0]!),
        ctx({
          name: "OVR",
          overrides: {
            SeriesDescription: "remove",
            "0008,1030": "Research study",
            PatientSex: "remove", // Type 2: emptied, not removed
            StationName: "keep",
            "0010,1010": "empty",
            "0018,1030": "ProjectName",
            ContentDate: "keep",
          },
        }),
      ).bytes,
    );
    expect(dict["0008103E"]).toBeUndefined();
    expect(value(dict, "00081030")).toBe("Research study");
    expect(value(dict, "00100040")).toBe("");
    expect(value(dict, "00081010")).toBe(DEFAULT_PHI.stationName);
    expect(value(dict, "00101010")).toBe("");
    expect(value(dict, "00181030")).toBe("OVR");
    expect(value(dict, "00080023")).toBe("20240102");
  });

  it("a literal override creates the attribute when missing", () => {
    const { dict } = parse(
      deid(readFile(study.files[0]!), ctx({ name: "P", overrides: { "0032,4000": "created" } })).bytes,
    );
    expect(value(dict, "00324000")).toBe("created");
  });
});

describe("input errors", () => {
  it("rejects non-DICOM input, bad participants and participants not matching the pattern", () => {
    expect(() => deidentify(Buffer.from("hello"), ctx({ name: "P" }))).toThrow(/Part-10/);
    const bytes = readFile(otherStudy.files[0]!);
    expect(() => deidentify(bytes, ctx({ name: "P" }, { participant: "A\\B" }))).toThrow(/participant/);
    expect(() =>
      deidentify(bytes, ctx({ name: "P", participantPattern: "TOBE_\\d{4}" }, { participant: "X_1" })),
    ).toThrow(/pattern/);
    expect(
      deid(bytes, ctx({ name: "P", participantPattern: "TOBE_\\d{4}" }, { participant: "TOBE_0001" })),
    ).toBeTruthy();
    expect(() => deidentify(bytes.subarray(0, bytes.length - 100), ctx({ name: "P" }))).toThrow();
  });
});

describe("robustness", () => {
  it("corrupted input either de-identifies or throws a DeidError, never anything else", () => {
    const input = readFile(study.files[0]!);
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const headerEnd = input.length - 256 * 256 * 2; // corrupt the header part, not the pixels
    let ok = 0;
    for (let i = 0; i < 300; i++) {
      const bad = Buffer.from(input);
      for (let k = 0; k < 1 + rand(4); k++) bad[132 + rand(headerEnd - 132)] = rand(256);
      const cut = i % 5 === 0 ? bad.subarray(0, 132 + rand(headerEnd)) : bad;
      try {
        deidentify(cut, ctx({ name: "FUZZ" }));
        ok++;
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(DeidError);
      }
    }
    expect(ok).toBeGreaterThan(0);
  });
});

describe("secret", () => {
  it("is required for hmac UIDs and derived offsets, optional for legacy UIDs with a fixed offset", () => {
    const bytes = readFile(otherStudy.files[0]!);
    expect(() => deidentify(bytes, { ...ctx({ name: "P" }), secret: "" })).toThrow(DeidError);
    expect(() => deidentify(bytes, { ...ctx({ name: "P", uidMode: "fiona-legacy" }), secret: "" })).toThrow(
      DeidError,
    );
    const r = deid(bytes, { ...ctx({ name: "P", uidMode: "fiona-legacy", dateOffsetDays: 42 }), secret: "" });
    expect(r.sopInstanceUid.startsWith("1.3.6.1.4.1.45037.")).toBe(true);
  });
});
