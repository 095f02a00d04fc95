import { z } from "zod";

/** Job scheduler timings, heartbeat and cleanup (src/schedules). */
export const schedulesSchema = z.object({}).strict();
