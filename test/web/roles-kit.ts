/** What the door tests share: one user per role, signing in, and jobs that really failed. */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { hashPassword } from "../../src/web/password.js";
import type { Role } from "../../src/web/roles.js";
import { basic, REDIS_URL } from "./helpers.js";

export type Caller = "anonymous" | Role;

export const CALLERS: Caller[] = ["anonymous", "viewer", "operator", "admin"];

/** One user per role; viewer and operator are granted PROJ only. */
export const USERS: Record<Role, { name: string; password: string }> = {
  viewer: { name: "vera", password: "vera-viewer-password" },
  operator: { name: "otto", password: "otto-operator-password" },
  admin: { name: "ada", password: "ada-admin-password" },
};

export function roleUsers() {
  return (Object.entries(USERS) as Array<[Role, { name: string; password: string }]>).map(([role, u]) => ({
    name: u.name,
    passwordHash: hashPassword(u.password, { N: 2 ** 10 }),
    role,
    projects: role === "admin" ? [] : ["PROJ"],
  }));
}

/** Basic-auth headers of a caller (none for anonymous). */
export function authOf(caller: Caller): Record<string, string> {
  return caller === "anonymous" ? {} : { Authorization: basic(USERS[caller].name, USERS[caller].password) };
}

export interface SignedIn {
  cookie: string;
  csrf: string;
}

/** Signs in on the Assign page's API as a browser would; the session cookie and its CSRF token. */
export async function signIn(base: string, role: Role): Promise<SignedIn> {
  const res = await fetch(`${base}/api/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Sec-Fetch-Site": "same-origin" },
    body: JSON.stringify({ user: USERS[role].name, password: USERS[role].password }),
  });
  if (res.status !== 200) throw new Error(`sign-in of ${role} answered ${res.status}`);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  return { cookie, csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
}

/** Jobs added to `queueName` and failed by a worker (BullMQ's manual processing); their ids. */
export async function failJobs(prefix: string, queueName: string, datas: object[]): Promise<string[]> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection, prefix });
  const worker = new Worker(queueName, null, { connection: connection.duplicate(), prefix });
  const token = "door-test";
  const ids: string[] = [];
  try {
    for (const data of datas) {
      const added = await queue.add("test", data);
      const job = await worker.getNextJob(token);
      if (job?.id !== added.id) throw new Error(`took job ${job?.id}, not ${added.id}`);
      await job.moveToFailed(new Error("refused by the test"), token);
      ids.push(added.id!);
    }
  } finally {
    await worker.close();
    await queue.close();
    connection.disconnect();
  }
  return ids;
}

/** The state of a job (failed, waiting, …). */
export async function jobState(prefix: string, queueName: string, id: string): Promise<string> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection, prefix });
  try {
    return (await (await queue.getJob(id))?.getState()) ?? "absent";
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
