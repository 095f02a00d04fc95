/**
 * What the engine derives from a project's settings and the site secret, memoised because every file
 * of a transfer asks again: the parsed settings, the compiled profile, the UID mapper and date offset.
 */
import { compileProfile, type CompiledProfile } from "./profile.js";
import { projectDeidSchema, type ProjectDeid, type ProjectDeidInput } from "./project.js";
import { UidMapper, projectDateOffset } from "./uid.js";

export interface Prepared {
  project: ProjectDeid;
  profile: CompiledProfile;
  participantRe: RegExp | undefined;
}

const preparedCache = new WeakMap<object, Prepared>();
/** Same settings passed as a new object each call (e.g. configuration re-read per job): keyed by JSON. */
const preparedByJson = new Map<string, Prepared>();

export function prepare(input: ProjectDeidInput | ProjectDeid): Prepared {
  let p = preparedCache.get(input);
  if (!p) {
    const json = JSON.stringify(input);
    p = preparedByJson.get(json);
    if (!p) {
      const project = projectDeidSchema.parse(input);
      p = {
        project,
        profile: compileProfile(project),
        participantRe: project.participantPattern
          ? new RegExp(`^(?:${project.participantPattern})$`)
          : undefined,
      };
      if (preparedByJson.size >= 64) preparedByJson.clear();
      preparedByJson.set(json, p);
    }
    preparedCache.set(input, p);
  }
  return p;
}

export interface Keyring {
  mapper: UidMapper;
  dateOffset: number;
}

/** Per parsed project: secret -> keyring (UID memo and date offset). */
const keyrings = new WeakMap<ProjectDeid, Map<string, Keyring>>();

export function keyring(project: ProjectDeid, secret: string): Keyring {
  let bySecret = keyrings.get(project);
  if (!bySecret) keyrings.set(project, (bySecret = new Map()));
  let k = bySecret.get(secret);
  if (!k) {
    if (bySecret.size >= 16) bySecret.clear();
    k = {
      mapper: new UidMapper(project.name, secret, project.uidMode),
      dateOffset: projectDateOffset(project.name, secret, project.dateOffsetDays, project.dateOffsetRange),
    };
    bySecret.set(secret, k);
  }
  return k;
}

/** The date offset (days) the engine applies for a project and secret. */
export function dateOffsetFor(project: ProjectDeidInput | ProjectDeid, secret: string): number {
  return keyring(prepare(project).project, secret).dateOffset;
}
