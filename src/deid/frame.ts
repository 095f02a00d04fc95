/** The Part-10 frame around the data set the engine rewrites: meta UIDs, syntax, inflated bytes. */
import { inflateRawSync } from "node:zlib";
import { FileMetaError, readFileMeta, type FileMeta } from "../dicom/part10.js";
import {
  DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
  EXPLICIT_VR_BIG_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
} from "../dicom/transfer-syntax.js";
import { EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, type Syntax } from "./bytes.js";
import { DeidParseError } from "./errors.js";
import { normalizeUid } from "./uid.js";

export interface Frame {
  transferSyntaxUid: string;
  mediaSopClassUid: string;
  mediaSopInstanceUid: string;
  /** The data set after the meta group, inflated when the syntax is deflated. */
  dataset: Buffer;
  syntax: Syntax;
  deflated: boolean;
}

/** Throws DeidParseError for input that is not a readable Part-10 file. */
export function readFrame(input: Uint8Array): Frame {
  const file = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  let meta: FileMeta;
  try {
    meta = readFileMeta(file);
  } catch (err) {
    throw err instanceof FileMetaError ? new DeidParseError(err.message) : err;
  }
  const ts = normalizeUid(meta.transferSyntaxUid);
  if (ts === "") throw new DeidParseError("file meta group has no TransferSyntaxUID");
  let dataset = file.subarray(meta.datasetOffset);
  let syntax = EXPLICIT_LE;
  let deflated = false;
  if (ts === IMPLICIT_VR_LITTLE_ENDIAN) syntax = IMPLICIT_LE;
  else if (ts === EXPLICIT_VR_BIG_ENDIAN) syntax = EXPLICIT_BE;
  else if (ts === DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) {
    deflated = true;
    try {
      dataset = inflateRawSync(dataset);
    } catch {
      throw new DeidParseError("deflated data set cannot be inflated");
    }
  }
  return {
    transferSyntaxUid: ts,
    mediaSopClassUid: normalizeUid(meta.sopClassUid),
    mediaSopInstanceUid: normalizeUid(meta.sopInstanceUid),
    dataset,
    syntax,
    deflated,
  };
}
