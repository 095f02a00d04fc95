import { describe, expect, it } from "vitest";
import { BasicAuthChecker, type VerifyPassword } from "../../src/web/auth.js";
import { hashPassword, verifyPasswordAsync } from "../../src/web/password.js";
import type { WebUser } from "../../src/web/users.js";

const admin: WebUser = {
  name: "admin",
  role: "admin",
  projects: [],
  passwordHash: hashPassword("pw", { N: 2 ** 10 }),
};
const header = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

/** The real scrypt check of the one account, counting how often it runs; `hang` makes new ones never finish. */
function counting(opts: { hang?: boolean } = {}) {
  const calls = { count: 0 };
  const verify: VerifyPassword = async (name, password) => {
    calls.count++;
    if (opts.hang) return new Promise(() => {});
    const ok = name === admin.name && (await verifyPasswordAsync(password, admin.passwordHash!));
    return ok ? { ok: true, user: admin } : { ok: false, reason: "invalid" };
  };
  return { calls, verify };
}

describe("basic auth cache", () => {
  it("runs scrypt once per header while cached, and again after the TTL", async () => {
    const { calls, verify } = counting();
    const checker = new BasicAuthChecker(verify, { ttlMs: 100 });
    const ok = header("admin", "pw");
    for (let i = 0; i < 3; i++) expect((await checker.check(ok)).ok).toBe(true);
    expect(calls.count).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect((await checker.check(ok)).ok).toBe(true);
    expect(calls.count).toBe(2);
  });

  it("shares one verification between concurrent requests with the same header", async () => {
    const { calls, verify } = counting();
    const checker = new BasicAuthChecker(verify);
    const results = await Promise.all(Array.from({ length: 8 }, () => checker.check(header("admin", "pw"))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(calls.count).toBe(1);
  });

  it("does not cache failures", async () => {
    const { calls, verify } = counting();
    const checker = new BasicAuthChecker(verify);
    expect(await checker.check(header("admin", "nope"))).toEqual({ ok: false, reason: "invalid" });
    expect(await checker.check(header("admin", "nope"))).toEqual({ ok: false, reason: "invalid" });
    expect(calls.count).toBe(2);
  });

  it("forgets verified headers when cleared (the users changed)", async () => {
    const { calls, verify } = counting();
    const checker = new BasicAuthChecker(verify);
    await checker.check(header("admin", "pw"));
    checker.clear();
    await checker.check(header("admin", "pw"));
    expect(calls.count).toBe(2);
  });

  it("skips scrypt for headers that are not Basic credentials", async () => {
    const { calls, verify } = counting();
    const checker = new BasicAuthChecker(verify);
    expect((await checker.check("Bearer x")).ok).toBe(false);
    expect((await checker.check("Basic !!!")).ok).toBe(false);
    expect(calls.count).toBe(0);
  });

  it("answers busy when too many distinct verifications are running", async () => {
    const { calls, verify } = counting({ hang: true });
    const checker = new BasicAuthChecker(verify, { maxConcurrent: 2 });
    void checker.check(header("admin", "a"));
    void checker.check(header("admin", "b"));
    expect(await checker.check(header("admin", "c"))).toEqual({ ok: false, reason: "busy" });
    expect(calls.count).toBe(2);
  });
});
