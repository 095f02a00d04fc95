/**
 * Bull Board's state-changing API calls (its routes in @bull-board/api, in the order it registers
 * them, so a path matches the same route here as there): what each one does and the role it needs.
 * Operators may retry and promote single jobs; every other action needs an admin, as does any route a
 * later Bull Board adds (unknown routes fail closed).
 */
import type { Role } from "../roles.js";

export interface BoardAction {
  /** Audited as `queues:<action>`. */
  action: string;
  role: Role;
  queue?: string;
  jobId?: string;
  /** The job state of a bulk action, or the job scheduler acted on. */
  detail?: string;
}

type Param = "queueName" | "jobId" | "queueStatus" | "schedulerId";

interface Route {
  method: string;
  pattern: RegExp;
  params: Param[];
  action: string;
  role: Role;
}

function route(method: string, path: string, action: string, role: Role = "admin"): Route {
  const params: Param[] = [];
  const source = path.replace(/:(\w+)/g, (_m, name: Param) => {
    params.push(name);
    return "([^/]+)";
  });
  // Express matches case-insensitively and ignores a trailing slash; so does this.
  return { method, pattern: new RegExp(`^${source}/?$`, "i"), params, action, role };
}

const ROUTES: Route[] = [
  route("PUT", "/api/queues/pause", "pause-all"),
  route("PUT", "/api/queues/resume", "resume-all"),
  route("POST", "/api/queues/:queueName/add", "add"),
  route("PUT", "/api/queues/:queueName/retry/:queueStatus", "retry-all"),
  route("PUT", "/api/queues/:queueName/promote", "promote-all"),
  route("PUT", "/api/queues/:queueName/clean/:queueStatus", "clean-all"),
  route("PUT", "/api/queues/:queueName/pause", "pause"),
  route("PUT", "/api/queues/:queueName/resume", "resume"),
  route("PUT", "/api/queues/:queueName/concurrency", "set-concurrency"),
  route("PUT", "/api/queues/:queueName/rate-limit", "set-rate-limit"),
  route("PUT", "/api/queues/:queueName/rate-limit/release", "release-rate-limit"),
  route("PUT", "/api/queues/:queueName/empty", "empty"),
  route("PUT", "/api/queues/:queueName/obliterate", "obliterate"),
  route("PUT", "/api/queues/:queueName/job-schedulers/:schedulerId/remove", "remove-scheduler"),
  route("PATCH", "/api/queues/:queueName/job-schedulers/:schedulerId", "update-scheduler"),
  route("PUT", "/api/queues/:queueName/job-schedulers/:schedulerId/run", "run-scheduler"),
  route("PUT", "/api/queues/:queueName/:jobId/retry", "retry", "operator"),
  route("PUT", "/api/queues/:queueName/:jobId/clean", "remove"),
  route("PUT", "/api/queues/:queueName/:jobId/promote", "promote", "operator"),
  route("PATCH", "/api/queues/:queueName/:jobId/update-data", "edit-data"),
  route("PATCH", "/api/queues/:queueName/:jobId/delay", "change-delay"),
  route("PATCH", "/api/queues/:queueName/:jobId/priority", "change-priority"),
  route("PUT", "/api/queues/:queueName/:jobId/remove-unprocessed-children", "remove-children"),
];

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The action a state-changing request to Bull Board (path below BOARD_PATH) asks for. */
export function boardAction(method: string, path: string): BoardAction {
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    const m = r.pattern.exec(path);
    if (!m) continue;
    const p: Partial<Record<Param, string>> = {};
    r.params.forEach((name, i) => (p[name] = decode(m[i + 1]!)));
    const detail = p.queueStatus
      ? `jobs ${p.queueStatus}`
      : p.schedulerId
        ? `scheduler ${p.schedulerId}`
        : undefined;
    return {
      action: r.action,
      role: r.role,
      ...(p.queueName ? { queue: p.queueName } : {}),
      ...(p.jobId ? { jobId: p.jobId } : {}),
      ...(detail ? { detail } : {}),
    };
  }
  return { action: "unknown", role: "admin", detail: `${method} ${path.slice(0, 200)}` };
}
