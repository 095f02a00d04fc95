/**
 * What a web user may do. Roles are ordered: each one may do what the ones before it may.
 *
 * - viewer: read (lists, transfers, audit of granted projects, Bull Board, /metrics); no writes at all.
 * - operator: as viewer, plus assignments, retries, coupling lists, exports in granted projects, and
 *   Bull Board's retry and promote of single jobs (of granted projects, when the job names one).
 * - admin: every project, every Bull Board action, the whole audit log.
 */
export const ROLES = ["viewer", "operator", "admin"] as const;

export type Role = (typeof ROLES)[number];

/** True when `role` is `needed` or above it. */
export function hasRole(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
