/** Errors of the de-identification engine. Messages never contain element values. */
export class DeidError extends Error {
  override name = "DeidError";
}

/** The input is not a DICOM file the engine can read (not Part-10, truncated, malformed). */
export class DeidParseError extends DeidError {
  override name = "DeidParseError";
}

/** The engine will not produce an output for this input (e.g. compressed pixels that need cleaning). */
export class DeidRefusedError extends DeidError {
  override name = "DeidRefusedError";
}
