import { z } from "zod";

/** A DICOM AE title as configuration accepts it. */
export const aeTitleSchema = z
  .string()
  .min(1)
  .max(16)
  .regex(/^[\x20-\x7e]+$/, "AE titles are 1-16 printable ASCII characters")
  .refine((s) => !s.includes("\\"), "AE titles must not contain a backslash");

export const portSchema = z.number().int().min(1).max(65535);

/** BCP 195 allows TLS 1.2 and 1.3 only. */
export const tlsVersionSchema = z.enum(["TLSv1.2", "TLSv1.3"]);

/**
 * DICOM TLS towards one peer (PS3.15 B.9 / BCP 195). Present = connect with TLS. The peer's certificate
 * is always verified: against `ca` (PEM file), else the system's trusted CAs, and its name against the
 * configured host. `cert` + `key` (PEM files) authenticate us when the peer asks for a certificate.
 */
export const dicomTlsClientSchema = z
  .object({
    ca: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    minVersion: tlsVersionSchema.default("TLSv1.2"),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), "tls.cert and tls.key go together");

/** As configured (minVersion may be left out: TLS 1.2). */
export type DicomTlsClient = z.input<typeof dicomTlsClientSchema>;

/** A DICOM peer we connect to as an SCU. */
export const dicomPeerSchema = z
  .object({
    aeTitle: aeTitleSchema,
    host: z.string().min(1),
    port: portSchema,
    /** Our AE title towards this peer (default: the site's aeTitle). */
    callingAeTitle: aeTitleSchema.optional(),
    tls: dicomTlsClientSchema.optional(),
  })
  .strict();

export type DicomPeer = z.infer<typeof dicomPeerSchema>;
