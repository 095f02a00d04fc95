/** Shorthands for the answers routes document (./routes.ts). */
import type { Reply } from "./routes.js";
import { z } from "./zod.js";

/** What every error answers. */
const ErrorBody = z.object({ error: z.string() }).openapi("Error");

export const ok = (schema: z.ZodTypeAny, description = "OK"): Reply => ({ description, schema });

export const error = (description: string): Reply => ({ description, schema: ErrorBody });
