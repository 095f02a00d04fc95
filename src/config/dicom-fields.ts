import { z } from "zod";

/** A DICOM AE title as configuration accepts it. */
export const aeTitleSchema = z
  .string()
  .min(1)
  .max(16)
  .regex(/^[\x20-\x7e]+$/, "AE titles are 1-16 printable ASCII characters")
  .refine((s) => !s.includes("\\"), "AE titles must not contain a backslash");

export const portSchema = z.number().int().min(1).max(65535);
