import { z } from "zod";

/** Whole-slide pathology uploads and conversion (src/wsi). */
export const wsiSchema = z.object({}).strict();
