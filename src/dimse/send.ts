/**
 * Send Part-10 files byte-faithfully: the dataset after the meta group goes out as it is on disk, in
 * the file's own transfer syntax, over one association per batch (up to 128 distinct SOP class /
 * transfer syntax pairs per association, which is every realistic series or study).
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { FileMetaError, readFileMeta, type FileMeta } from "../dicom/part10.js";
import { log as defaultLog, type Logger } from "../log.js";
import {
  MAX_CONTEXTS,
  openAssociation,
  type ContextRequest,
  type StoreAssociation,
  type StoreDestination,
  type StoreRequest,
} from "./association.js";
import { peerLabel } from "./connect.js";
import { SendError } from "./errors.js";
import { NOT_SENT, type StoreOutcome } from "./status.js";

/** The meta group of a file that can be sent: none of the three UIDs is empty. */
export interface Part10Meta extends FileMeta {
  /** Size of the whole file (set by readPart10Meta). */
  fileSize?: number;
}

/** The file is not a Part-10 file we can send (no DICM prefix, broken or incomplete meta group). */
export class NotSendableError extends Error {
  override name = "NotSendableError";
}

/** The meta group of a Part-10 file (see readFileMeta), with the three UIDs a C-STORE needs. */
export function parsePart10Meta(bytes: Uint8Array): Part10Meta {
  let meta: FileMeta;
  try {
    meta = readFileMeta(bytes);
  } catch (err) {
    throw err instanceof FileMetaError ? new NotSendableError(err.message, { cause: err }) : err;
  }
  const { sopClassUid, sopInstanceUid, transferSyntaxUid, datasetOffset } = meta;
  if (!sopClassUid || !sopInstanceUid || !transferSyntaxUid)
    throw new NotSendableError(
      "meta group lacks MediaStorageSOPClassUID, MediaStorageSOPInstanceUID or TransferSyntaxUID",
    );
  return { sopClassUid, sopInstanceUid, transferSyntaxUid, datasetOffset };
}

/** Read a Part-10 file and return what `StoreAssociation.store` needs; the dataset is a view, not a copy. */
export function readPart10ForStore(path: string): StoreRequest {
  const bytes = readFileSync(path);
  const meta = parsePart10Meta(bytes);
  return {
    sopClassUid: meta.sopClassUid,
    sopInstanceUid: meta.sopInstanceUid,
    transferSyntaxUid: meta.transferSyntaxUid,
    dataset: bytes.subarray(meta.datasetOffset),
  };
}

const HEAD_BYTES = 16 * 1024;
const PREFETCH_LIMIT = 64 * 1024 * 1024;

/** The meta group of a file, reading only its first 16 KiB unless the meta group is larger. */
export function readPart10Meta(path: string): Part10Meta {
  const fd = openSync(path, "r");
  let fileSize: number;
  try {
    fileSize = fstatSync(fd).size;
    const head = Buffer.allocUnsafe(HEAD_BYTES);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, head, filled, HEAD_BYTES - filled, filled);
      if (n === 0) break;
      filled += n;
      if (filled === HEAD_BYTES) break;
    }
    try {
      return { ...parsePart10Meta(head.subarray(0, filled)), fileSize };
    } catch (err) {
      // A meta group that runs past a full head is read again from the whole file.
      const cause = (err as Error).cause;
      if (!(filled === HEAD_BYTES && cause instanceof FileMetaError && cause.reason === "truncated"))
        throw err;
    }
  } finally {
    closeSync(fd);
  }
  return { ...parsePart10Meta(readFileSync(path)), fileSize };
}

export interface FileOutcome {
  path: string;
  /** From the meta group, when the file could be read. */
  sopInstanceUid?: string;
  outcome: StoreOutcome;
}

export interface SendProgress {
  /** Files decided so far (sent or not). */
  done: number;
  total: number;
  file: FileOutcome;
}

export interface SendOptions {
  /** Called once per file, in the order files are decided. */
  onProgress?: (progress: SendProgress) => void;
  logger?: Logger;
  /**
   * The next file is read while the peer handles the current one when it is at most this big
   * (default 64 MiB); bigger files are read only when it is their turn, so one is in memory at a time.
   */
  prefetchLimitBytes?: number;
}

export interface SendReport {
  /** "CALLED_AE@host:port". */
  destination: string;
  /** One per decided file, in input order (all files unless sendFiles threw). */
  files: FileOutcome[];
  succeeded: number;
  /** Stored with a warning status (counted in neither succeeded nor failed). */
  warnings: number;
  failed: number;
  /** Failures that may succeed later (subset of failed). */
  retryable: number;
  /** Associations opened. */
  associations: number;
  /** Dataset bytes acknowledged by the peer (any status). */
  bytes: number;
  elapsedMs: number;
}

function notSent(reason: string): StoreOutcome {
  return { status: NOT_SENT, kind: "failure", retryable: false, reason };
}

function errorText(err: unknown): string {
  if (err instanceof NotSendableError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code ? `cannot read file (${code})` : "cannot read file";
}

/**
 * Send Part-10 files to one destination: read every meta group, open one association proposing each
 * distinct (SOP class, transfer syntax) pair, send the files in order (one outstanding request; the
 * next file is read while the peer handles the current one), release.
 *
 * Per-file problems (unreadable file, rejected presentation context, failure status) are outcomes in
 * the report. Association-level problems throw RetryableSendError / PermanentSendError with the
 * partial report attached as `err.report`.
 */
export async function sendFiles(
  dest: StoreDestination,
  paths: string[],
  opts: SendOptions = {},
): Promise<SendReport> {
  const started = performance.now();
  const prefetchLimit = opts.prefetchLimitBytes ?? PREFETCH_LIMIT;
  const logger = (opts.logger ?? dest.logger ?? defaultLog).child({
    component: "dimse-send",
    destination: peerLabel(dest),
  });
  const results: Array<FileOutcome | undefined> = new Array(paths.length);
  const report: SendReport = {
    destination: peerLabel(dest),
    files: [],
    succeeded: 0,
    warnings: 0,
    failed: 0,
    retryable: 0,
    associations: 0,
    bytes: 0,
    elapsedMs: 0,
  };
  let done = 0;
  const decide = (index: number, file: FileOutcome): void => {
    results[index] = file;
    const { outcome } = file;
    if (outcome.kind === "success") report.succeeded++;
    else if (outcome.kind === "warning") report.warnings++;
    else {
      report.failed++;
      if (outcome.retryable) report.retryable++;
    }
    done++;
    opts.onProgress?.({ done, total: paths.length, file });
  };
  const finish = (): SendReport => {
    report.files = results.filter((r): r is FileOutcome => r !== undefined);
    report.elapsedMs = performance.now() - started;
    return report;
  };

  // Pass 1: meta groups, batches of at most MAX_CONTEXTS distinct contexts (input order kept).
  const batches: Array<{ indices: number[]; contexts: ContextRequest[] }> = [];
  const sizes: number[] = new Array(paths.length).fill(0);
  let batch: (typeof batches)[number] | undefined;
  let keys = new Set<string>();
  paths.forEach((path, index) => {
    let meta: Part10Meta;
    try {
      meta = readPart10Meta(path);
    } catch (err) {
      decide(index, { path, outcome: notSent(errorText(err)) });
      return;
    }
    sizes[index] = meta.fileSize ?? 0;
    const key = `${meta.sopClassUid}|${meta.transferSyntaxUid}`;
    if (!batch || (!keys.has(key) && keys.size === MAX_CONTEXTS)) {
      batch = { indices: [], contexts: [] };
      batches.push(batch);
      keys = new Set();
    }
    if (!keys.has(key)) {
      keys.add(key);
      batch.contexts.push({ sopClassUid: meta.sopClassUid, transferSyntaxUid: meta.transferSyntaxUid });
    }
    batch.indices.push(index);
  });

  type Loaded = { ok: true; request: StoreRequest } | { ok: false; reason: string };
  const load = (index: number): Loaded => {
    try {
      return { ok: true, request: readPart10ForStore(paths[index]!) };
    } catch (err) {
      return { ok: false, reason: errorText(err) };
    }
  };

  for (const { indices, contexts } of batches) {
    let association: StoreAssociation;
    try {
      association = await openAssociation(dest, contexts);
    } catch (err) {
      if (err instanceof SendError) err.report = finish();
      throw err;
    }
    report.associations++;
    try {
      let next: Loaded | undefined;
      for (let k = 0; k < indices.length; k++) {
        const index = indices[k]!;
        const current: Loaded = next ?? load(index);
        next = undefined;
        if (!current.ok) {
          decide(index, { path: paths[index]!, outcome: notSent(current.reason) });
          continue;
        }
        // Start the store (its PDUs are written synchronously), then read the next file while the
        // peer works on this one (unless it is big: then only one file is held in memory at a time).
        const pending = association.store(current.request);
        const following = indices[k + 1];
        if (following !== undefined && sizes[following]! <= prefetchLimit) next = load(following);
        const outcome = await pending;
        if (outcome.status !== NOT_SENT) report.bytes += current.request.dataset.length;
        if (outcome.kind === "warning")
          logger.warn(
            {
              status: outcome.status,
              reason: outcome.reason,
              sopInstanceUid: current.request.sopInstanceUid,
            },
            "C-STORE stored with a warning",
          );
        decide(index, { path: paths[index]!, sopInstanceUid: current.request.sopInstanceUid, outcome });
      }
      await association.release();
    } catch (err) {
      association.abort();
      if (err instanceof SendError) err.report = finish();
      throw err;
    }
  }
  const final = finish();
  logger.debug(
    {
      files: paths.length,
      succeeded: final.succeeded,
      warnings: final.warnings,
      failed: final.failed,
      associations: final.associations,
      ms: Math.round(final.elapsedMs),
    },
    "send finished",
  );
  return final;
}
