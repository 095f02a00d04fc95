/**
 * A generic C-FIND SCU (Study Root information model) on dcmjs-dimse's Client: one
 * association, one query, every pending match collected. Queries are small, so dcmjs-dimse's dataset
 * encoding is fine here (the byte-faithful path in association.ts is for C-STORE).
 *
 * A DIMSE status that is not Success is an answer, not an error ("refused" for Out of Resources,
 * "failed" for Unable to Process and the rest): the caller decides (the inventory splits the query).
 * Network errors, timeouts and rejected associations throw a FindError.
 */
import dimse from "dcmjs-dimse";
import { peerLabel, tlsClientOptions, type DicomTlsClient } from "./connect.js";
import { routeLibraryLogging } from "./library-log.js";

const { Client, Dataset } = dimse;
const { CFindRequest } = dimse.requests;
const { Status } = dimse.constants;

export interface FindDestination {
  host: string;
  port: number;
  /** The peer's AE title. */
  calledAe: string;
  /** Our AE title. */
  callingAe: string;
  /** DICOM TLS towards the peer; plain TCP when absent. */
  tls?: DicomTlsClient;
}

/** dcmjs-dimse Client.send options for a destination's timeouts and TLS (its public options only). */
export function clientOptions(dest: FindDestination, timeoutMs: number, responseTimeoutMs = timeoutMs) {
  const tls = dest.tls === undefined ? undefined : tlsClientOptions(dest.tls);
  return {
    connectTimeout: timeoutMs,
    associationTimeout: timeoutMs,
    pduTimeout: responseTimeoutMs,
    associationLingerTimeout: 0,
    ...(tls !== undefined && { securityOptions: tls }),
  };
}

export type FindLevel = "STUDY" | "SERIES" | "IMAGE";

/** One match as dcmjs naturalizes it: keywords to values (PN values are `{ Alphabetic }` objects). */
export type FindMatch = Record<string, unknown>;

export interface FindResult {
  status: "success" | "refused" | "failed" | "cancelled";
  /** The final response's DIMSE status. */
  statusCode: number;
  errorComment?: string;
  /** Pending responses received (also on a final failure: some PACS answer part, then refuse). */
  matches: FindMatch[];
}

export interface FindOptions {
  /** Limit for connecting, negotiating and each wait for a response (default 30 s). */
  timeoutMs?: number;
}

/** The query got no answer: `retryable` false when only a configuration change helps (AE title refused). */
export class FindError extends Error {
  override name = "FindError";
  constructor(
    /** "CALLED_AE@host:port". */
    readonly destination: string,
    message: string,
    readonly retryable: boolean,
    opts: { cause?: unknown } = {},
  ) {
    super(
      `C-FIND to ${destination}: ${message}`,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
  }
}

/** A-ASSOCIATE-RJ result 1 is permanent (wrong AE title, no Q/R service); 2 is transient. */
const PERMANENT_REJECT = 1;
/** Pending, with a warning that optional keys are not supported (PS3.4 C.4.1.1.4). */
const PENDING_WARNING = 0xff01;

function findStatus(code: number): FindResult["status"] {
  if (code === Status.Success) return "success";
  if (code === Status.Cancel) return "cancelled";
  // A700-A7FF: Refused, Out of Resources (PS3.4 C.4.1.1.4).
  if ((code & 0xff00) === 0xa700) return "refused";
  return "failed";
}

/** Run one C-FIND; `keys` are keywords with match values ("" = return this attribute). */
export function cFind(
  dest: FindDestination,
  level: FindLevel,
  keys: Record<string, unknown>,
  opts: FindOptions = {},
): Promise<FindResult> {
  routeLibraryLogging();
  const timeout = opts.timeoutMs ?? 30_000;
  const label = peerLabel(dest);
  const request = new CFindRequest();
  request.setDataset(new Dataset({ ...keys, QueryRetrieveLevel: level }));

  return new Promise<FindResult>((resolve, reject) => {
    const matches: FindMatch[] = [];
    let final: Omit<FindResult, "matches"> | undefined;
    const client = new Client();
    const fail = (e: Error) => reject(e);
    request.on("response", (response) => {
      const code = response.getStatus();
      if (code === Status.Pending || code === PENDING_WARNING) {
        const ds = response.getDataset();
        if (ds) matches.push(ds.getElements());
        return;
      }
      const comment = response.getErrorComment();
      final = { status: findStatus(code), statusCode: code, ...(comment ? { errorComment: comment } : {}) };
    });
    client.addRequest(request);
    client.on("associationRejected", (r: { result: number; source: number; reason: number }) => {
      const message = `association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`;
      fail(new FindError(label, message, r.result !== PERMANENT_REJECT));
    });
    client.on("networkError", (e: Error) => fail(new FindError(label, e.message, true, { cause: e })));
    client.on("closed", () => {
      if (final) resolve({ ...final, matches });
      else reject(new FindError(label, "association closed without a final response", true));
    });
    try {
      client.send(dest.host, dest.port, dest.callingAe, dest.calledAe, clientOptions(dest, timeout));
    } catch (e) {
      fail(new FindError(label, (e as Error).message, false, { cause: e }));
    }
  });
}

/**
 * One attribute of a match as text: PN as its alphabetic form, multi-valued attributes joined with a
 * backslash (as in the DICOM encoding), numbers as decimals; undefined when absent or empty.
 */
export function matchText(match: FindMatch, keyword: string): string | undefined {
  const v = match[keyword];
  const one = (x: unknown): string =>
    x && typeof x === "object" && "Alphabetic" in x
      ? String((x as { Alphabetic: unknown }).Alphabetic ?? "")
      : String(x ?? "");
  const text = Array.isArray(v) ? v.map(one).join("\\") : v === undefined || v === null ? "" : one(v);
  const trimmed = text.trim();
  return trimmed === "" ? undefined : trimmed;
}
