import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { parseCouplingCsv, parseCsv } from "../../src/routing/coupling.js";

const { projects } = configSchema.parse({
  projects: [
    { name: "PROJ", participantPattern: "PROJ_[0-9]{4}", events: ["baseline", "followup"] },
    { name: "FREE" },
  ],
});
const HEADER = "AccessionNumber,ProjectName,subjectid,eventname";

describe("CSV reader", () => {
  it("handles quotes, doubled quotes, separators and line breaks inside quotes", () => {
    const { records, errors } = parseCsv('a,"b,c","say ""hi""","two\nlines"\nnext,x,y,z');
    expect(errors).toEqual([]);
    expect(records).toEqual([
      { line: 1, fields: ["a", "b,c", 'say "hi"', "two\nlines"] },
      { line: 3, fields: ["next", "x", "y", "z"] },
    ]);
  });
  it("accepts CRLF, CR and a byte-order mark, and counts lines for each", () => {
    expect(parseCsv("\uFEFFa,b\r\nc,d\r\n").records).toEqual([
      { line: 1, fields: ["a", "b"] },
      { line: 2, fields: ["c", "d"] },
    ]);
    expect(parseCsv("a\rb\r\rc").records.map((r) => [r.line, r.fields[0]])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, ""],
      [4, "c"],
    ]);
  });
  it("reports an unterminated quote at the line where it starts and stray text after a quote", () => {
    expect(parseCsv('a,b\nc,"open\nmore').errors).toEqual([
      { line: 2, message: expect.stringContaining("not closed") },
    ]);
    expect(parseCsv('a,"b"x,c').errors).toEqual([
      { line: 1, message: expect.stringContaining("after a closing quote") },
    ]);
    expect(parseCsv('a,b"c,d').errors).toEqual([{ line: 1, message: expect.stringContaining("unquoted") }]);
  });
  it("detects semicolon- and tab-separated files from the header", () => {
    expect(parseCsv("a;b;c\n1;2,5;3").records[1]?.fields).toEqual(["1", "2,5", "3"]);
    expect(parseCsv("a\tb\n1\t2").records[1]?.fields).toEqual(["1", "2"]);
  });
});

describe("coupling list", () => {
  it("parses rows, trims values, skips blank lines and duplicates, keeps line numbers", () => {
    const csv = [
      HEADER,
      " ACC1 , PROJ , PROJ_0001 , baseline ",
      "",
      ",,,",
      '"ACC,2",FREE,anyone,',
      "ACC1,PROJ,PROJ_0001,baseline",
      "ACC3,PROJ,PROJ_0003,",
    ].join("\r\n");
    const { rows, errors } = parseCouplingCsv(csv, projects);
    expect(errors).toEqual([]);
    expect(rows).toEqual([
      { line: 2, accessionNumber: "ACC1", project: "PROJ", participant: "PROJ_0001", event: "baseline" },
      { line: 5, accessionNumber: "ACC,2", project: "FREE", participant: "anyone" },
      { line: 7, accessionNumber: "ACC3", project: "PROJ", participant: "PROJ_0003" },
    ]);
  });

  it("takes the optional StudyInstanceUID column, any column order and REDCap names", () => {
    const csv =
      "StudyInstanceUID,subjectid,ProjectName,AccessionNumber,eventname\n1.2.3.4,PROJ_0002,PROJ,,followup\n";
    expect(parseCouplingCsv(csv, projects)).toEqual({
      rows: [
        {
          line: 2,
          studyInstanceUid: "1.2.3.4",
          project: "PROJ",
          participant: "PROJ_0002",
          event: "followup",
        },
      ],
      errors: [],
    });
    const redcap = "cl_accessionnumber,cl_projectname,cl_subjectid,cl_eventname\nA9,FREE,x,\n";
    expect(parseCouplingCsv(redcap, projects).rows).toEqual([
      { line: 2, accessionNumber: "A9", project: "FREE", participant: "x" },
    ]);
    const noEvent = "AccessionNumber;ProjectName;subjectid\nA9;FREE;x\n";
    expect(parseCouplingCsv(noEvent, projects).rows).toHaveLength(1);
  });

  it("reports every row problem with its line number and column", () => {
    const csv = [
      HEADER + ",StudyInstanceUID",
      "A1,PROJ,P1,baseline,", // pattern
      "A2,NOPE,x,,", // project
      "A3,PROJ,PROJ_0001,never,", // event
      ",PROJ,PROJ_0001,,", // no accession nor uid
      "A5,,PROJ_0001,,", // empty project
      "A6,PROJ,,,", // empty subject
      "A7,PROJ,PROJ_0001,,1.2.x", // bad uid
      "A8,PROJ,PROJ_0001,,,extra", // too many values
      "A9,PROJ,PROJ_0009,,",
    ].join("\n");
    const { rows, errors } = parseCouplingCsv(csv, projects);
    expect(rows.map((r) => r.line)).toEqual([10]);
    expect(errors.map((e) => [e.line, e.column])).toEqual([
      [2, "subjectid"],
      [3, "ProjectName"],
      [4, "eventname"],
      [5, "AccessionNumber"],
      [6, "ProjectName"],
      [7, "subjectid"],
      [8, "StudyInstanceUID"],
      [9, undefined],
    ]);
    expect(errors[0]!.message).toMatch(/pattern/);
    expect(errors[1]!.message).toBe("unknown project NOPE");
    expect(errors[7]!.message).toMatch(/6 values but the header has 5 columns/);
  });

  it("rejects a bad header clearly", () => {
    expect(parseCouplingCsv("", projects).errors[0]!.message).toMatch(/empty/);
    expect(parseCouplingCsv("AccesionNumber,ProjectName,subjectid\n", projects).errors).toEqual([
      expect.objectContaining({
        line: 1,
        column: "AccesionNumber",
        message: expect.stringMatching(/unknown column/),
      }),
      expect.objectContaining({
        line: 1,
        message: expect.stringMatching(/AccessionNumber or a StudyInstanceUID/),
      }),
    ]);
    expect(parseCouplingCsv("\n\nAccessionNumber,ProjectName\nA,PROJ\n", projects).errors).toEqual([
      { line: 3, message: "the header has no subjectid column" },
    ]);
    expect(
      parseCouplingCsv("AccessionNumber,ProjectName,subjectid,subjectid\n", projects).errors[0]!.message,
    ).toMatch(/twice/);
  });

  it("never puts an accession number into an error message", () => {
    const { errors } = parseCouplingCsv(`${HEADER}\nSECRETACC,NOPE,x,\nSECRETACC2,PROJ,bad,\n`, projects);
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e.message).not.toContain("SECRETACC");
  });
});
