import { describe, expect, it } from "vitest";
import { projectSchema } from "../../src/config/schema.js";
import { InvalidRequestError, requestId, validateRequest } from "../../src/transfer/request.js";

const projects = [
  projectSchema.parse({
    name: "PROJ",
    participantPattern: "PROJ_[0-9]{4}",
    events: ["baseline", "followup"],
  }),
  projectSchema.parse({ name: "OPEN" }),
];
const req = {
  studyInstanceUid: "1.2.3.4",
  project: "PROJ",
  participant: "PROJ_0001",
  event: "baseline",
  requestedBy: "t",
};

describe("transfer requests", () => {
  it("have one id per (study, project, participant, event)", () => {
    expect(requestId(req)).toBe(requestId({ ...req }));
    expect(requestId(req)).not.toBe(requestId({ ...req, event: "followup" }));
    expect(requestId(req)).not.toBe(requestId({ ...req, participant: "PROJ_0002" }));
    expect(requestId({ ...req, event: undefined })).not.toBe(requestId({ ...req, event: "" + "x" }));
    expect(requestId(req)).toMatch(/^[0-9a-f]{24}$/);
  });

  it("accept a participant matching the whole pattern and a known event", () => {
    expect(validateRequest(req, projects).name).toBe("PROJ");
    expect(validateRequest({ ...req, project: "OPEN", event: "anything" }, projects).name).toBe("OPEN");
  });

  it.each([
    [{ participant: "PROJ_12345" }, /pattern/],
    [{ participant: "xPROJ_1234" }, /pattern/],
    [{ event: "week52" }, /not one of project PROJ's events/],
    [{ project: "NOPE" }, /unknown project NOPE/],
    [{ studyInstanceUid: "1.2/../3" }, /not a valid UID/],
    [{ project: "OPEN", participant: "a\\b" }, /printable ASCII/],
  ])("reject %o", (change, message) => {
    expect(() => validateRequest({ ...req, ...change }, projects)).toThrow(InvalidRequestError);
    expect(() => validateRequest({ ...req, ...change }, projects)).toThrow(message);
  });
});
