/**
 * JPEG 2000 tiles (TIFF compression 33003/33004/33005) passed through as DICOM JPEG 2000 frames (pure):
 * a tile that is a raw codestream (SOC, SIZ …) is a valid frame as it is. The codestream, not the TIFF
 * tags, says whether the colour transform is inside it (COD MCT) and whether the wavelet is reversible,
 * which decides the transfer syntax and the photometric interpretation.
 */
import { JPEG_2000, JPEG_2000_LOSSLESS } from "../dicom/transfer-syntax.js";
import { WsiInputError } from "./errors.js";

export interface J2kInfo {
  width: number;
  height: number;
  components: number;
  precision: number;
  /** 5/3 reversible wavelet (lossless-capable) rather than 9/7. */
  reversible: boolean;
  /** Multiple component transform inside the codestream. */
  mct: boolean;
}

/** SIZ and COD of a raw JPEG 2000 codestream. */
export function readJ2k(stream: Buffer, where: string): J2kInfo {
  if (stream.length < 4 || stream.readUInt16BE(0) !== 0xff4f || stream.readUInt16BE(2) !== 0xff51)
    throw new WsiInputError(
      `unsupported compression in ${where}: JPEG 2000 data that is not a raw codestream`,
    );
  let p = 2;
  let siz: Omit<J2kInfo, "reversible" | "mct"> | undefined;
  while (p + 4 <= stream.length) {
    const marker = stream.readUInt16BE(p);
    const length = stream.readUInt16BE(p + 2);
    if (p + 2 + length > stream.length) break;
    if (marker === 0xff51 && length >= 41) {
      siz = {
        width: stream.readUInt32BE(p + 6) - stream.readUInt32BE(p + 14),
        height: stream.readUInt32BE(p + 10) - stream.readUInt32BE(p + 18),
        components: stream.readUInt16BE(p + 38),
        precision: (stream[p + 40]! & 0x7f) + 1,
      };
    } else if (marker === 0xff52 && length >= 12 && siz) {
      return { ...siz, mct: stream[p + 8] === 1, reversible: stream[p + 13] === 1 };
    } else if (marker === 0xff90 || marker === 0xff93) break; // first tile-part: the main header is over
    p += 2 + length;
  }
  throw new WsiInputError(`malformed JPEG 2000 codestream in ${where}: no SIZ or COD marker`);
}

/**
 * Transfer syntax and photometric interpretation for passing the tiles through, or a reason why not.
 * Colour transformed outside the codestream (Aperio 33003, YCbCr with MCT off) has no photometric
 * interpretation the WSI IOD allows for JPEG 2000.
 */
export function j2kPassThrough(
  info: J2kInfo,
  tiffPhotometric: number,
): { transferSyntaxUid: string; photometric: "RGB" | "YBR_ICT" | "YBR_RCT" } | { unsupported: string } {
  if (info.components !== 3 || info.precision !== 8)
    return { unsupported: `${info.components} components of ${info.precision} bits` };
  const transferSyntaxUid = info.reversible ? JPEG_2000_LOSSLESS : JPEG_2000;
  if (info.mct) return { transferSyntaxUid, photometric: info.reversible ? "YBR_RCT" : "YBR_ICT" };
  if (tiffPhotometric === 2) return { transferSyntaxUid, photometric: "RGB" };
  return { unsupported: "YCbCr converted outside the codestream" };
}
