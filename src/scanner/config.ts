import { z } from "zod";

/** MPPS SCP and scanner pulls (src/scanner). */
export const scannersSchema = z.object({}).strict();
