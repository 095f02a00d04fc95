import { z } from "zod";
import { dicomPeerSchema } from "../config/dicom-fields.js";

/** SHA-256 host key fingerprint as OpenSSH prints it (`ssh-keygen -lf`): "SHA256:<base64 without padding>". */
const fingerprint = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, "a host key fingerprint like SHA256:… (ssh-keygen -lf key.pub)");

/** One SFTP destination: the server's host key is pinned, authentication is by private key only. */
export const sftpDestinationSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1),
    /** Path of the private key file (OpenSSH or PEM format, unencrypted). */
    keyPath: z.string().min(1),
    /** Remote folder the archives are uploaded to (must exist). */
    remoteDir: z.string().min(1).default("."),
    /** The server's host key fingerprint; any other key fails the upload. */
    hostKeySha256: fingerprint,
    /** Connection attempts per upload (dropped connections restart the upload), backing off from retryDelayMs. */
    attempts: z.number().int().min(1).max(50).default(5),
    retryDelayMs: z.number().int().min(10).max(600_000).default(2000),
    readyTimeoutMs: z.number().int().min(100).max(600_000).default(20_000),
  })
  .strict();

/** Exports (src/export) and outbound SFTP (src/sftp). */
export const exportsSchema = z
  .object({
    /** Where export archives are written; default <dataDir>/exports. */
    dir: z.string().min(1).optional(),
    /** clearExports deletes the oldest archives while the export disk is fuller than this (percent). */
    maxDiskPercent: z.number().min(1).max(100).default(90),
    /** clearExports deletes temporary build folders older than this. */
    tempMaxAgeHours: z.number().positive().max(8760).default(24),
    /** How often clearExports runs. */
    clearIntervalMinutes: z.number().positive().max(10_080).default(60),
    /** dcm2niix executable for the NIFTI layout (found on PATH by default). */
    dcm2niix: z.string().min(1).default("dcm2niix"),
    /** SFTP destinations by name. */
    sftp: z.record(z.string().regex(/^[A-Za-z0-9._-]+$/), sftpDestinationSchema).default({}),
  })
  .strict();

export type ExportsConfig = z.infer<typeof exportsSchema>;
export type SftpDestination = z.infer<typeof sftpDestinationSchema>;

/** A DICOM node NoAssign may forward a pseudonymized study to (never the research PACS). */
export const noAssignDestinationSchema = dicomPeerSchema.extend({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "names are 1-64 of A-Z a-z 0-9 . _ -"),
});

/** NoAssign (src/export/noassign.ts): the DICOM destinations pseudonymized studies may be forwarded to. */
export const noAssignSchema = z
  .object({
    destinations: z
      .array(noAssignDestinationSchema)
      .default([])
      .refine((d) => new Set(d.map((x) => x.name)).size === d.length, "destination names must be unique"),
  })
  .strict();

export type NoAssignConfig = z.infer<typeof noAssignSchema>;
export type NoAssignDestination = z.infer<typeof noAssignDestinationSchema>;
