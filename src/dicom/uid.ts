/** A DICOM UID: dot-separated numeric components, no leading zeros, at most 64 characters. */
const UID_RE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;

export function isValidUid(value: unknown): value is string {
  return typeof value === "string" && value.length <= 64 && UID_RE.test(value);
}

/**
 * Lenient check for UIDs used in paths: digits and dots only, at most 64 characters, no empty
 * component. Some modalities emit leading zeros; they are harmless in a path, unlike "..", "/" or NUL.
 */
export function isPathSafeUid(value: unknown): value is string {
  return (
    typeof value === "string" && value.length > 0 && value.length <= 64 && /^[0-9]+(\.[0-9]+)*$/.test(value)
  );
}

class InvalidUidError extends Error {
  constructor(what: string) {
    super(`${what} is not a valid UID (digits and dots, at most 64 characters)`);
    this.name = "InvalidUidError";
  }
}

export function assertPathSafeUid(value: unknown, what: string): string {
  if (!isPathSafeUid(value)) throw new InvalidUidError(what);
  return value;
}
