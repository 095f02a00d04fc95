/** A test MPPS SCU (dcmtk has none): N-CREATE / N-SET over dcmjs-dimse's Client, one association each. */
import dimse from "dcmjs-dimse";
import { MPPS_SOP_CLASS } from "../../src/scanner/mpps-step.js";

const { Client, Dataset } = dimse;
const { NCreateRequest, NSetRequest } = dimse.requests;

export interface MppsPeer {
  port: number;
  callingAe: string;
}

export interface MppsAnswer {
  status: number;
  sopInstanceUid: string;
  errorComment?: string;
}

function send(
  peer: MppsPeer,
  request: dimse.requests.NCreateRequest | dimse.requests.NSetRequest,
): Promise<MppsAnswer> {
  return new Promise((resolve, reject) => {
    let answer: MppsAnswer | undefined;
    const client = new Client();
    request.on("response", (r) => {
      const comment = r.getErrorComment();
      answer = {
        status: r.getStatus(),
        sopInstanceUid: r.getAffectedSopInstanceUid(),
        ...(comment ? { errorComment: comment } : {}),
      };
    });
    client.addRequest(request);
    client.on("networkError", reject);
    client.on("closed", () => (answer ? resolve(answer) : reject(new Error("no N- response"))));
    client.send("127.0.0.1", peer.port, peer.callingAe, "FIONA", { associationLingerTimeout: 0 });
  });
}

/** The attributes of an MPPS N-CREATE (PS3.4 F.7.2.1), PHI included as a scanner sends it. */
export function createDataset(
  studyInstanceUid: string,
  phi: { patientName: string; patientId: string; birthDate: string; accession: string },
  series: Array<{ seriesInstanceUid: string; images: number }> = [],
): Record<string, unknown> {
  return {
    PatientName: phi.patientName,
    PatientID: phi.patientId,
    PatientBirthDate: phi.birthDate,
    PatientSex: "O",
    ScheduledStepAttributesSequence: [
      { StudyInstanceUID: studyInstanceUid, AccessionNumber: phi.accession, RequestedProcedureID: "RP1" },
    ],
    PerformedProcedureStepID: "PPS1",
    PerformedStationAETitle: "MRSCANNER",
    PerformedProcedureStepStartDate: "20261203",
    PerformedProcedureStepStartTime: "101500",
    PerformedProcedureStepStatus: "IN PROGRESS",
    PerformedProcedureStepDescription: "brain",
    Modality: "MR",
    PerformedSeriesSequence: series.map(seriesItem),
  };
}

const seriesItem = (s: { seriesInstanceUid: string; images: number }) => ({
  SeriesInstanceUID: s.seriesInstanceUid,
  SeriesDescription: "t1",
  ReferencedImageSequence: Array.from({ length: s.images }, (_, i) => ({
    ReferencedSOPClassUID: "1.2.840.10008.5.1.4.1.1.4",
    ReferencedSOPInstanceUID: `1.2.3.${i + 1}`,
  })),
});

export function nCreate(peer: MppsPeer, sopInstanceUid: string, attrs: Record<string, unknown>) {
  const request = new NCreateRequest(MPPS_SOP_CLASS, sopInstanceUid);
  request.setDataset(new Dataset(attrs));
  return send(peer, request);
}

export function nSet(
  peer: MppsPeer,
  sopInstanceUid: string,
  status: "IN PROGRESS" | "COMPLETED" | "DISCONTINUED",
  series?: Array<{ seriesInstanceUid: string; images: number }>,
) {
  const request = new NSetRequest(MPPS_SOP_CLASS, sopInstanceUid);
  request.setDataset(
    new Dataset({
      PerformedProcedureStepStatus: status,
      ...(status === "IN PROGRESS"
        ? {}
        : { PerformedProcedureStepEndDate: "20261203", PerformedProcedureStepEndTime: "103000" }),
      ...(series ? { PerformedSeriesSequence: series.map(seriesItem) } : {}),
    }),
  );
  return send(peer, request);
}
