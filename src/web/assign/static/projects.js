// @ts-check
// The projects granted to the user, loaded at sign-in.
import { listProjects } from "./api.js";
import { clear, h, select } from "./dom.js";

/** @import { Project } from "./types.js" */

/** @type {Project[]} */
let projects = [];

export const grantedProjects = () => projects;

/** @param {string} name */
export const projectByName = (name) => projects.find((p) => p.name === name);

/** Loads the projects and offers them in the transfers view's project filter. */
export async function loadProjects() {
  projects = await listProjects();
  const sel = select("t-project");
  const keep = sel.value;
  clear(sel).append(h("option", { value: "" }, "All my projects"));
  for (const p of projects) sel.append(h("option", { value: p.name }, p.name));
  sel.value = projects.some((p) => p.name === keep) ? keep : "";
}
