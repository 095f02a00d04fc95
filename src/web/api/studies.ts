/** /studies: the incoming list and one study with its series. */
import { isPathSafeUid } from "../../dicom/uid.js";
import { studyFilterSchema } from "../../registry/studies.js";
import type { TransferRecord } from "../../registry/transfers.js";
import type { ApiContext } from "./context.js";
import { HttpError } from "./http-error.js";
import { principalOf, type Principal } from "./principal.js";
import { choice, count, text } from "./query.js";
import { error, ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { Study, StudyDetail } from "./schemas.js";
import type { StudyTransferRef } from "./study-views.js";
import { z } from "./zod.js";

/** The list's query; the registry's filter schema checks the filter fields (and names them in errors). */
const listQuery = z
  .object({
    q: text(
      "Free text: descriptions, AE titles, modality, StudyInstanceUID, participant (accession number, patient name and ID where shown); or exactly an accession number",
    ),
    from: text("Study date from (YYYYMMDD or YYYY-MM-DD), inclusive"),
    studyDateFrom: text("Alias of from"),
    to: text("Study date to, inclusive"),
    studyDateTo: text("Alias of to"),
    seenFrom: text("Last image received at or after (ISO date/time or epoch ms)"),
    seenTo: text("Last image received at or before (a bare date means the end of that day, UTC)"),
    accession: text("Accession number, exactly"),
    description: text("Study or series description contains"),
    ae: text("Calling or called AE title contains"),
    aeTitle: text("Alias of ae"),
    modality: text("One of the study's modalities"),
    // Checked by the filter schema, which names it in its message.
    status: text("receiving or arrived").openapi({ enum: ["receiving", "arrived"] }),
    assigned: choice(["all", "assigned", "unassigned"], "Filter by assignment"),
    limit: count(500, 5000, "At most this many (default 500)"),
  })
  .transform((v, zc) => {
    const filter = studyFilterSchema.safeParse({
      studyDateFrom: v.from ?? v.studyDateFrom,
      studyDateTo: v.to ?? v.studyDateTo,
      seenFrom: v.seenFrom,
      seenTo: v.seenTo,
      accession: v.accession,
      description: v.description,
      aeTitle: v.ae ?? v.aeTitle,
      status: v.status,
      modality: v.modality,
    });
    if (!filter.success) {
      for (const issue of filter.error.issues) zc.addIssue(issue);
      return z.NEVER;
    }
    return { filter: filter.data, q: v.q, assigned: v.assigned, limit: v.limit };
  });

const uidParam = z.object({ studyInstanceUid: z.string().describe("StudyInstanceUID") });

/** Transfers of each study, of the projects `p` may see. */
function visibleRefs(ctx: ApiContext, p: Principal, list: TransferRecord[]): Map<string, StudyTransferRef[]> {
  const map = new Map<string, StudyTransferRef[]>();
  for (const t of list) {
    if (!ctx.users.canUseProject(p.user, t.project)) continue;
    const refs = map.get(t.studyInstanceUid) ?? [];
    refs.push({
      requestId: t.requestId,
      project: t.project,
      participant: t.participant,
      ...(t.event ? { event: t.event } : {}),
      status: t.status,
    });
    map.set(t.studyInstanceUid, refs);
  }
  return map;
}

export async function studyDetail(ctx: ApiContext, p: Principal, uid: string) {
  const entry = isPathSafeUid(uid) ? await ctx.studies.get(uid) : undefined;
  if (!entry) throw new HttpError(404, "unknown study");
  const refs = visibleRefs(ctx, p, await ctx.transfers.forStudy(uid));
  return ctx.views.detail(entry, refs.get(uid) ?? []);
}

export function registerStudyRoutes(api: ApiRoutes, ctx: ApiContext): void {
  api.route(
    {
      method: "get",
      path: "/studies",
      summary: "The incoming list, newest first",
      query: listQuery,
      invalid: (i) => `invalid filter ${i?.path.join(".") ?? ""}: ${i?.message ?? ""}`,
      responses: { 200: ok(z.array(Study)), 400: error("Invalid filter") },
    },
    async (_req, res, input) => {
      const p = principalOf(res);
      const refs = visibleRefs(ctx, p, await ctx.snapshot.all());
      const { filter, q, assigned, limit } = input.query();
      let list;
      try {
        list = await ctx.views.list(
          {
            ...filter,
            ...(q ? { q } : {}),
            ...(assigned === "assigned" || assigned === "unassigned" ? { assigned } : {}),
            limit,
          },
          (uid) => refs.get(uid) ?? [],
        );
      } catch (e) {
        if (e instanceof RangeError) throw new HttpError(400, e.message);
        throw e;
      }
      res.json(list);
    },
  );

  api.route(
    {
      method: "get",
      path: "/studies/:studyInstanceUid",
      summary: "One study with its series",
      params: uidParam,
      responses: { 200: ok(StudyDetail), 404: error("Unknown study") },
    },
    async (_req, res, input) => {
      res.json(await studyDetail(ctx, principalOf(res), input.params().studyInstanceUid));
    },
  );
}
