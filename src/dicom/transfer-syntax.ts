/** Transfer syntax UIDs (PS3.6 annex A) the code names, and what it needs to know about them. */

export const IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2";
export const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99";
export const EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2";
export const JPEG_BASELINE = "1.2.840.10008.1.2.4.50";
export const JPEG_EXTENDED = "1.2.840.10008.1.2.4.51";
export const JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90";
export const JPEG_2000 = "1.2.840.10008.1.2.4.91";

/** The four syntaxes whose pixel data is stored uncompressed (deflate compresses the whole dataset). */
const NATIVE = new Set([
  IMPLICIT_VR_LITTLE_ENDIAN,
  EXPLICIT_VR_LITTLE_ENDIAN,
  EXPLICIT_VR_BIG_ENDIAN,
  DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
]);

export function isNativeTransferSyntax(uid: string): boolean {
  return NATIVE.has(uid);
}

/** A transfer syntax defined by the standard (1.2.840.10008.1.2 and below), not a vendor's private one. */
export function isStandardTransferSyntax(uid: string): boolean {
  return uid === IMPLICIT_VR_LITTLE_ENDIAN || uid.startsWith(`${IMPLICIT_VR_LITTLE_ENDIAN}.`);
}
