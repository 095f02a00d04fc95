/**
 * What the storage SCP accepts during association negotiation (pure functions).
 *
 * Abstract syntaxes: Verification, every standard storage SOP class, and any non-standard (private,
 * outside 1.2.840.10008) abstract syntax, which we treat as a vendor storage class the way
 * `storescp --promiscuous` does. Standard DICOM SOP classes that are not storage (query/retrieve,
 * worklist, MPPS, storage commitment, print, …) are rejected.
 *
 * Transfer syntaxes: the first one the SCU proposes, preferring standard DICOM transfer syntaxes
 * (1.2.840.10008.1.2*) over private ones, since only those can be parsed to file the instance.
 */
import { isStandardTransferSyntax } from "../dicom/transfer-syntax.js";
import { VERIFICATION_SOP_CLASS } from "../dimse/command.js";

/** Storage SOP classes outside the 1.2.840.10008.5.1.4.1.1 arc (dcmtk's dcmAllStorageSOPClassUIDs). */
const STORAGE_OUTSIDE_MAIN_ARC = new Set([
  "1.2.840.10008.5.1.4.34.7", // RT Beams Delivery Instruction Storage
  "1.2.840.10008.5.1.4.34.10", // RT Patient Position Acquisition Instruction Storage
  "1.2.840.10008.5.1.4.38.1", // Hanging Protocol Storage
  "1.2.840.10008.5.1.4.39.1", // Color Palette Storage
  "1.2.840.10008.5.1.4.43.1", // Generic Implant Template Storage
  "1.2.840.10008.5.1.4.44.1", // Implant Assembly Template Storage
  "1.2.840.10008.5.1.4.45.1", // Implant Template Group Storage
]);

/** True for storage SOP classes (standard ones, and private ones by promiscuity). */
function isStorageAbstractSyntax(uid: string): boolean {
  if (uid.startsWith("1.2.840.10008.5.1.4.1.1.")) return true;
  if (STORAGE_OUTSIDE_MAIN_ARC.has(uid)) return true;
  // A non-standard SOP class: accept like storescp --promiscuous (vendor private storage classes).
  return !uid.startsWith("1.2.840.10008.") && /^[0-9]+(\.[0-9]+)+$/.test(uid);
}

export function isAcceptedAbstractSyntax(uid: string): boolean {
  return uid === VERIFICATION_SOP_CLASS || isStorageAbstractSyntax(uid);
}

/** The transfer syntax to accept from the proposed list, or undefined when none is usable. */
export function chooseTransferSyntax(proposed: readonly string[]): string | undefined {
  const standard = proposed.find(isStandardTransferSyntax);
  return standard ?? proposed.find((ts) => ts.length > 0);
}

/** Modality for the archive file name: [A-Z0-9] only, at most 16 characters, "UN" when missing. */
export function fileModality(modality: string | undefined): string {
  const cleaned = (modality ?? "")
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, "")
    .slice(0, 16);
  return cleaned === "" ? "UN" : cleaned;
}
