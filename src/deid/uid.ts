/**
 * UID and identifier derivation.
 *
 * hmac (default):
 *   new UID = "2.25." + decimal( first 16 bytes of HMAC-SHA256(key = UTF-8(secret),
 *                                   message = UTF-8(project) || 0x00 || ASCII(uid)) )
 *   where uid is the original value without leading spaces and trailing spaces/NULs. The result is an
 *   unsigned 128-bit integer in decimal (no leading zeros, at most 39 digits), so the UID is at most
 *   44 characters. Identical in every file, run and machine for the same (secret, project, uid).
 *
 * fiona-legacy (DICOMAnonymizer, reference 1.4):
 *   new UID = ("1.3.6.1.4.1.45037." + digits(SHA-256(raw value bytes || project bytes))).slice(0, 63)
 *   where digits() writes each digest byte as two characters, high nibble first, nibble n -> n mod 10,
 *   and the raw value includes the stored pad byte (NUL for odd-length UIDs); StudyInstanceUID hashes the
 *   value without its trailing NUL. Components may start with 0 (as in the original).
 */
import { createHash, createHmac } from "node:crypto";

export type UidMode = "hmac" | "fiona-legacy";

const LEGACY_ROOT = "1.3.6.1.4.1.45037.";
/** DICOM-defined UIDs (SOP classes, transfer syntaxes, coding schemes…): never mapped. */
const WELL_KNOWN_PREFIX = "1.2.840.10008.";

export function isWellKnownUid(uid: string): boolean {
  return uid.startsWith(WELL_KNOWN_PREFIX);
}

/** A UID without leading spaces and trailing spaces/NULs. */
export function normalizeUid(value: string): string {
  let end = value.length;
  while (end > 0) {
    const c = value.charCodeAt(end - 1);
    if (c !== 0 && c !== 0x20) break;
    end--;
  }
  let start = 0;
  while (start < end && value.charCodeAt(start) === 0x20) start++;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/** DICOMAnonymizer's digest encoding: 64 decimal digits (each nibble mod 10). */
export function legacyDigits(data: Buffer | string): string {
  const digest = createHash("sha256").update(data).digest();
  let out = "";
  for (let i = 0; i < digest.length; i++) {
    const b = digest[i]!;
    out += String.fromCharCode(48 + ((b >> 4) % 10), 48 + ((b & 15) % 10));
  }
  return out;
}

/** Legacy UID from the raw stored value (latin1 string, pad byte included) and the project. */
function legacyUidFromRaw(raw: string, project: string): string {
  return (
    LEGACY_ROOT + legacyDigits(Buffer.concat([Buffer.from(raw, "latin1"), Buffer.from(project, "utf8")]))
  ).slice(0, 63);
}

export function hmacUid(uid: string, project: string, secret: string): string {
  const mac = createHmac("sha256", secret)
    .update(project, "utf8")
    .update("\u0000")
    .update(uid, "utf8")
    .digest();
  return `2.25.${BigInt(`0x${mac.subarray(0, 16).toString("hex")}`).toString(10)}`;
}

/**
 * The new UID for an original UID, as the engine writes it. Well-known UIDs come back unchanged.
 * `kind` only matters for fiona-legacy: "study" hashes the value without pad (the original's
 * StudyInstanceUID rule), any other UID hashes the value as a conformant file stores it (odd length
 * padded with one NUL).
 */
export function mapUid(
  uid: string,
  project: string,
  secret: string,
  mode: UidMode = "hmac",
  kind: "study" | "other" = "other",
): string {
  const clean = normalizeUid(uid);
  if (clean === "" || isWellKnownUid(clean)) return clean;
  if (mode === "fiona-legacy") {
    const raw = kind === "study" || clean.length % 2 === 0 ? clean : `${clean}\u0000`;
    return legacyUidFromRaw(raw, project);
  }
  if (secret === "") throw new Error("mapUid: the hmac mode needs a non-empty site secret");
  return hmacUid(clean, project, secret);
}

/** `n` decimal digits keyed with the secret: HMAC-SHA256(secret, label 0x00 project 0x00 value), first 8 bytes mod 10^n. */
export function keyedDigits(
  secret: string,
  label: string,
  project: string,
  value: string,
  n: number,
): string {
  const mac = createHmac("sha256", secret)
    .update(label, "utf8")
    .update("\u0000")
    .update(project, "utf8")
    .update("\u0000")
    .update(value, "utf8")
    .digest();
  const v = mac.readBigUInt64BE(0) % 10n ** BigInt(n);
  return v.toString(10).padStart(n, "0");
}

/**
 * The project's date offset in days: `fixed` when given, else derived from the secret:
 * min + (first 6 bytes of HMAC-SHA256(secret, "date-offset" 0x00 project) mod (max - min + 1)).
 */
export function projectDateOffset(
  project: string,
  secret: string,
  fixed: number | undefined,
  range: { min: number; max: number },
): number {
  if (fixed !== undefined) return fixed;
  if (secret === "") throw new Error("a derived date offset needs a non-empty site secret");
  const mac = createHmac("sha256", secret)
    .update("date-offset\u0000", "utf8")
    .update(project, "utf8")
    .digest();
  const span = range.max - range.min + 1;
  return range.min + (mac.readUIntBE(0, 6) % span);
}

/**
 * Memoised UID mapping for one (project, secret, mode). Bounded: cleared after `limit` entries.
 */
export class UidMapper {
  private readonly cache = new Map<string, string>();

  constructor(
    readonly project: string,
    private readonly secret: string,
    readonly mode: UidMode,
    private readonly limit = 100_000,
  ) {
    if (mode === "hmac" && secret === "") throw new Error("the hmac UID mode needs a non-empty site secret");
  }

  /** hmac mode: map one normalised UID. */
  mapClean(uid: string): string {
    let out = this.cache.get(uid);
    if (out === undefined) {
      out = hmacUid(uid, this.project, this.secret);
      this.remember(uid, out);
    }
    return out;
  }

  /** fiona-legacy: map a raw stored value (latin1, pad included). */
  mapLegacyRaw(raw: string): string {
    const key = `\u0001${raw}`;
    let out = this.cache.get(key);
    if (out === undefined) {
      out = legacyUidFromRaw(raw, this.project);
      this.remember(key, out);
    }
    return out;
  }

  /** Memoise any derived string under a key (shares the bound). */
  memo(key: string, derive: () => string): string {
    let out = this.cache.get(key);
    if (out === undefined) {
      out = derive();
      this.remember(key, out);
    }
    return out;
  }

  private remember(key: string, value: string): void {
    if (this.cache.size >= this.limit) this.cache.clear();
    this.cache.set(key, value);
  }
}
