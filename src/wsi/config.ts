import { z } from "zod";

/** Whole-slide pathology uploads and conversion (src/wsi). Every field defaulted: `{}` parses. */
export const wsiSchema = z
  .object({
    /** Upload store; empty means `<dataDir>/site/wsi-uploads`. */
    uploadDir: z.string().default(""),
    /** Largest accepted slide file (default 20 GiB). */
    maxUploadBytes: z
      .number()
      .int()
      .positive()
      .default(20 * 1024 ** 3),
    /** Delete the uploaded slide once its transfer succeeded (upload.json is kept). */
    deleteUploadAfterSend: z.boolean().default(true),
    /** A new pseudonymized study per slide, or one per (project, participant, event, request id). */
    studyPer: z.enum(["slide", "request"]).default("slide"),
    /** Keep the pyramid's thumbnail image (label and macro are always dropped). */
    keepThumbnail: z.boolean().default(false),
    /** Partial uploads untouched this long are stale (removed by the cleanup schedule). */
    incompleteUploadHours: z.number().positive().default(48),
  })
  .strict();

export type WsiConfig = z.infer<typeof wsiSchema>;
