import { z } from "zod";

/** Research-PACS inventory and reconciliation (src/inventory). */
export const inventorySchema = z.object({}).strict();
