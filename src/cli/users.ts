/**
 * `fiona user add|passwd|remove|list`: the web users of <dataDir>/users.json. Users of web.users in the
 * configuration file are listed too but changed only there. The running web server reads the file
 * again when it changes; a removed user's sessions end, and so do those of a changed password.
 */
import { mkdirSync } from "node:fs";
import type { Command } from "commander";
import { webUserName, type FionaConfig } from "../config/schema.js";
import { dropInitialPassword } from "../web/initial-admin.js";
import { hashPassword } from "../web/password.js";
import { ROLES, type Role } from "../web/roles.js";
import { readUsersFile, usersFilePath, writeUsersFile, type FileUser } from "../web/users-file.js";
import { auditCliAction } from "./cli-audit.js";
import { readNewPassword } from "./password-input.js";

interface ListedUser {
  name: string;
  role: Role;
  projects: string[];
  source: "users.json" | "web.users" | "web.basicAuth";
  password: boolean;
}

function parseName(name: string): string {
  const r = webUserName.safeParse(name);
  if (!r.success) throw new Error(`user name ${JSON.stringify(name)}: ${r.error.issues[0]?.message}`);
  return name;
}

function parseRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) throw new Error(`role ${role}: use ${ROLES.join(", ")}`);
  return role as Role;
}

function inConfig(cfg: FionaConfig, name: string): boolean {
  return cfg.web.users.some((u) => u.name === name) || cfg.web.basicAuth?.user === name;
}

function fileUser(users: FileUser[], cfg: FionaConfig, name: string): FileUser {
  const u = users.find((x) => x.name === name);
  if (u) return u;
  if (inConfig(cfg, name)) throw new Error(`${name} is a user of the configuration file: change it there`);
  throw new Error(`no user ${name}`);
}

function listUsers(cfg: FionaConfig): ListedUser[] {
  const out: ListedUser[] = cfg.web.users.map((u) => ({
    name: u.name,
    role: u.admin ? "admin" : (u.role ?? "operator"),
    projects: u.projects,
    source: "web.users",
    password: Boolean(u.passwordHash),
  }));
  const basic = cfg.web.basicAuth;
  if (basic && !out.some((u) => u.name === basic.user))
    out.push({ name: basic.user, role: "admin", projects: [], source: "web.basicAuth", password: true });
  for (const u of readUsersFile(usersFilePath(cfg.dataDir))) {
    // A name in both is the configuration's, as the web server reads them.
    if (!out.some((x) => x.name === u.name))
      out.push({ name: u.name, role: u.role, projects: u.projects, source: "users.json", password: true });
  }
  return out;
}

async function add(cfg: FionaConfig, name: string, o: { role: string; projects?: string }): Promise<void> {
  parseName(name);
  const role = parseRole(o.role);
  const projects = (o.projects ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const file = usersFilePath(cfg.dataDir);
  const users = readUsersFile(file);
  if (users.some((u) => u.name === name) || inConfig(cfg, name))
    throw new Error(`user ${name} exists already`);
  const unknown = projects.filter((p) => !cfg.projects.some((x) => x.name === p));
  if (unknown.length) console.error(`fiona: warning: no configured project ${unknown.join(", ")}`);
  if (role === "admin" && projects.length)
    console.error(
      "fiona: warning: admins have every project; --projects is kept for a later change of role only",
    );
  const passwordHash = hashPassword(await readNewPassword(name));
  mkdirSync(cfg.dataDir, { recursive: true });
  writeUsersFile(file, [...users, { name, passwordHash, role, projects }]);
  console.log(`user ${name} added (${role}${projects.length ? `, projects ${projects.join(",")}` : ""})`);
  await auditCliAction(cfg, {
    action: "user-add",
    detail: `${name} ${role}${projects.length ? ` ${projects.join(",")}` : ""}`,
  });
}

async function passwd(cfg: FionaConfig, name: string): Promise<void> {
  const file = usersFilePath(cfg.dataDir);
  const users = readUsersFile(file);
  const user = fileUser(users, cfg, name);
  const passwordHash = hashPassword(await readNewPassword(name));
  writeUsersFile(
    file,
    users.map((u) => (u.name === name ? { ...u, passwordHash } : u)),
  );
  dropInitialPassword(cfg.dataDir, user.passwordHash);
  console.log(`password of ${name} changed; their sessions have ended`);
  await auditCliAction(cfg, { action: "user-passwd", detail: name });
}

async function remove(cfg: FionaConfig, name: string): Promise<void> {
  const file = usersFilePath(cfg.dataDir);
  const users = readUsersFile(file);
  const user = fileUser(users, cfg, name);
  writeUsersFile(
    file,
    users.filter((u) => u.name !== name),
  );
  dropInitialPassword(cfg.dataDir, user.passwordHash);
  console.log(`user ${name} removed`);
  await auditCliAction(cfg, { action: "user-remove", detail: name });
}

function list(cfg: FionaConfig, json: boolean): void {
  const users = listUsers(cfg);
  if (json) return void console.log(JSON.stringify(users, null, 2));
  if (!users.length)
    return void console.log("no users (the web server creates the administrator on its first start)");
  for (const u of users) {
    const projects = u.role === "admin" ? "every project" : u.projects.join(",") || "no project";
    console.log(`${u.name}\t${u.role}\t${projects}\t${u.source}${u.password ? "" : " (proxy sign-in only)"}`);
  }
}

export function registerUserCommands(program: Command, cfg: () => FionaConfig): void {
  const user = program
    .command("user")
    .description("web users (pages, API, Bull Board, /metrics) in <dataDir>/users.json, next to web.users");
  user
    .command("add")
    .description("add a user; the password is read from stdin, or asked for on a terminal")
    .argument("<name>")
    .option("--role <role>", `${ROLES.join(", ")}`, "viewer")
    .option("--projects <list>", "granted projects, comma-separated")
    .action(async (name: string, o: { role: string; projects?: string }) => add(cfg(), name, o));
  user
    .command("passwd")
    .description("set a user's password (from stdin, or asked for on a terminal); ends their sessions")
    .argument("<name>")
    .action(async (name: string) => passwd(cfg(), name));
  user
    .command("remove")
    .description("remove a user; ends their sessions")
    .argument("<name>")
    .action(async (name: string) => remove(cfg(), name));
  user
    .command("list")
    .description("every web user with role, projects and where it is defined")
    .option("--json", "machine-readable output")
    .action((o: { json?: boolean }) => list(cfg(), !!o.json));
}
