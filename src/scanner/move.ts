/**
 * C-MOVE SCU for one series (Study Root, SERIES level) on dcmjs-dimse's Client. The scanner sends the
 * images to `destinationAe` (FIONA itself) over a separate association; this one only carries the
 * sub-operation counts. Association failures throw {@link MoveAssociationError}; a final non-Success
 * status is an answer (see {@link MoveResult}).
 */
import dimse from "dcmjs-dimse";
import { peerLabel } from "../dimse/connect.js";
import { clientOptions, type FindDestination } from "../dimse/find.js";
import { routeLibraryLogging } from "../dimse/library-log.js";

const { Client } = dimse;
const { CMoveRequest } = dimse.requests;
const { Status } = dimse.constants;

/** PS3.4 C.4.2.1.5: the SCP does not know the move destination (a configuration error, not transient). */
export const MOVE_DESTINATION_UNKNOWN = 0xa801;

/** The association failed; `retryable` is false for a permanent rejection (wrong AE title). */
class MoveAssociationError extends Error {
  override name = "MoveAssociationError";
  constructor(
    message: string,
    readonly retryable: boolean,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
  }
}

export interface MoveResult {
  status: "success" | "warning" | "failed";
  statusCode: number;
  errorComment?: string;
  completed: number;
  failed: number;
  warnings: number;
}

export interface MoveOptions {
  /** Connecting and negotiating (ms). */
  timeoutMs: number;
  /** The longest wait for the next response while the scanner sends (ms). */
  responseTimeoutMs: number;
}

function moveStatus(code: number): MoveResult["status"] {
  if (code === Status.Success) return "success";
  // B000: some sub-operations failed or had warnings (PS3.4 C.4.2.1.5).
  if (code === 0xb000) return "warning";
  return "failed";
}

export function cMoveSeries(
  dest: FindDestination,
  destinationAe: string,
  studyInstanceUid: string,
  seriesInstanceUid: string,
  opts: MoveOptions,
): Promise<MoveResult> {
  routeLibraryLogging();
  const label = peerLabel(dest);
  const request = CMoveRequest.createSeriesMoveRequest(destinationAe, studyInstanceUid, seriesInstanceUid);
  return new Promise<MoveResult>((resolve, reject) => {
    let final: MoveResult | undefined;
    let error: Error | undefined;
    const client = new Client();
    request.on("response", (response) => {
      const code = response.getStatus();
      if (code === Status.Pending) return;
      const comment = response.getErrorComment();
      final = {
        status: moveStatus(code),
        statusCode: code,
        ...(comment ? { errorComment: comment } : {}),
        completed: response.getCompleted() ?? 0,
        failed: response.getFailures() ?? 0,
        warnings: response.getWarnings() ?? 0,
      };
    });
    client.addRequest(request);
    client.on("associationRejected", (r: { result: number; source: number; reason: number }) => {
      const message = `C-MOVE to ${label}: association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`;
      // A-ASSOCIATE-RJ result 1 is permanent, 2 transient.
      error = new MoveAssociationError(message, r.result !== 1);
    });
    client.on("networkError", (e: Error) => {
      error ??= new MoveAssociationError(`C-MOVE to ${label}: ${e.message}`, true, { cause: e });
    });
    client.on("closed", () => {
      if (final) resolve(final);
      else
        reject(
          error ??
            new MoveAssociationError(`C-MOVE to ${label}: association closed without a final response`, true),
        );
    });
    try {
      client.send(
        dest.host,
        dest.port,
        dest.callingAe,
        dest.calledAe,
        clientOptions(dest, opts.timeoutMs, opts.responseTimeoutMs),
      );
    } catch (e) {
      reject(new MoveAssociationError(`C-MOVE to ${label}: ${(e as Error).message}`, false, { cause: e }));
    }
  });
}
