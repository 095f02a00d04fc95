/**
 * zod with `.openapi()` metadata. Every schema the API validates requests with, and the response
 * schemas it documents, are built from this `z`, so /api/openapi.json is generated from them.
 */
import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";

extendZodWithOpenApi(z);

export { z };
