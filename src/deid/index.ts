/**
 * De-identification engine (pure: bytes in, bytes out).
 *
 * ```ts
 * const r = deidentify(fileBytes, { project, participant: "TOBE_0022", event: "baseline", secret });
 * if (r.dropped) skip(r.dropped); else write(r.bytes, r.sopInstanceUid);
 * ```
 */
export { deidentify } from "./engine.js";
export { dateOffsetFor } from "./prepared.js";
export type { DeidContext, DeidDropped, DeidOutcome, DeidResult } from "./engine.js";
export { mapUid, type UidMode } from "./uid.js";
export { dropReason, type DropInfo } from "./pixels.js";
export { DeidError, DeidParseError, DeidRefusedError } from "./errors.js";
export { shiftDateValue } from "./dates.js";
export {
  projectDeidSchema,
  type ProjectDeid,
  type ProjectDeidInput,
  type PixelRectangles,
  type DeidOptions,
} from "./project.js";
