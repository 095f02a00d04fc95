/** /projects: the projects a caller may assign to, their participants, and participant id checks. */
import type { ProjectConfig } from "../../config/schema.js";
import { InvalidRequestError, validateRequest } from "../../transfer/request.js";
import { projectDestination } from "../../transfer/stage.js";
import type { ApiContext } from "./context.js";
import { principalOf } from "./principal.js";
import { text } from "./query.js";
import { error, ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { Participant, ParticipantCheck, Project } from "./schemas.js";
import { z } from "./zod.js";

const projectParam = z.object({ project: z.string().describe("Project name") });

function participantProblem(project: ProjectConfig, participant: string): string | undefined {
  try {
    validateRequest({ studyInstanceUid: "1.2", project: project.name, participant, requestedBy: "check" }, [
      project,
    ]);
    return undefined;
  } catch (e) {
    if (e instanceof InvalidRequestError) return e.message;
    throw e;
  }
}

export function registerProjectRoutes(api: ApiRoutes, ctx: ApiContext): void {
  const { cfg, users, snapshot } = ctx;

  async function participantsOf(project: string) {
    const byId = new Map<
      string,
      { participant: string; transfers: number; events: Set<string>; lastAt: string }
    >();
    for (const t of await snapshot.all()) {
      if (t.project !== project) continue;
      const e = byId.get(t.participant) ?? {
        participant: t.participant,
        transfers: 0,
        events: new Set(),
        lastAt: "",
      };
      e.transfers++;
      if (t.event) e.events.add(t.event);
      if (t.updatedAt > e.lastAt) e.lastAt = t.updatedAt;
      byId.set(t.participant, e);
    }
    return [...byId.values()]
      .sort((a, b) => a.participant.localeCompare(b.participant, undefined, { numeric: true }))
      .map((e) => ({ ...e, events: [...e.events].sort() }));
  }

  api.route(
    {
      method: "get",
      path: "/projects",
      summary: "Projects the caller may assign to",
      responses: { 200: ok(z.array(Project)) },
    },
    (_req, res) => {
      const p = principalOf(res);
      res.json(
        users.visibleProjects(p.user, cfg.projects).map((x) => {
          const d = projectDestination(cfg, x);
          return {
            name: x.name,
            ...(x.participantPattern ? { participantPattern: x.participantPattern } : {}),
            events: x.events,
            destination: d ? { aeTitle: d.aeTitle, host: d.host, port: d.port } : null,
          };
        }),
      );
    },
  );

  api.route(
    {
      method: "get",
      path: "/projects/:project/participants",
      summary: "Participants that already have transfers in the project",
      params: projectParam,
      responses: { 200: ok(z.array(Participant)), 404: error("No such project, or not granted") },
    },
    async (_req, res, input) => {
      const project = ctx.grantedProject(principalOf(res), input.params().project);
      res.json(await participantsOf(project.name));
    },
  );

  api.route(
    {
      method: "get",
      path: "/projects/:project/participants/check",
      summary: "Check a participant id against the project's pattern",
      params: projectParam,
      query: z.object({ participant: text("Participant id (when absent, valid is false)") }),
      responses: { 200: ok(ParticipantCheck), 404: error("No such project, or not granted") },
    },
    async (_req, res, input) => {
      const project = ctx.grantedProject(principalOf(res), input.params().project);
      const participant = input.query().participant ?? "";
      const problem = participant ? participantProblem(project, participant) : "enter a participant id";
      const exists = (await snapshot.all()).some(
        (t) => t.project === project.name && t.participant === participant,
      );
      res.json({ participant, valid: !problem, ...(problem ? { message: problem } : {}), exists });
    },
  );
}
