/** OpenAPI path of the inventory route (src/inventory/web.ts), merged into src/web/api/openapi.ts. */
export const inventoryApiPaths = {
  "/api/inventory/{project}": {
    get: {
      summary:
        "The research PACS's studies of a project (last crawl) and the reconciliation with FIONA's transfers",
      parameters: [{ name: "project", in: "path", required: true, schema: { type: "string" } }],
      responses: {
        200: {
          description:
            "project; inventory (crawledAt, complete, incompleteBuckets, queries, studies) and reconciliation " +
            "(missingInPacs, notSentByFiona), each absent before the first crawl. Patient ID and name, " +
            "accession number and referring physician only with web.showPatientIdentity.",
          content: { "application/json": { schema: { type: "object" } } },
        },
        401: { description: "Not signed in" },
        404: { description: "No such project for this user, or not inventoried" },
      },
    },
  },
};
