import type { NextFunction, Request, Response } from "express";
import { beforeEach, describe, expect, it, vi } from "vitest";

const calls = { count: 0, hang: false };

vi.mock("../../src/web/password.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/web/password.js")>();
  return {
    ...real,
    verifyPasswordAsync: (plain: string, stored: string) => {
      calls.count++;
      if (calls.hang) return new Promise<boolean>(() => {});
      return real.verifyPasswordAsync(plain, stored);
    },
  };
});

const { basicAuth } = await import("../../src/web/auth.js");
const { hashPassword } = await import("../../src/web/password.js");

const config = { user: "admin", passwordHash: hashPassword("pw", { N: 2 ** 10 }) };
const header = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`;

interface Outcome {
  status: number;
  headers: Record<string, string>;
}

function run(mw: ReturnType<typeof basicAuth>, authorization?: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = {};
    let status = 200;
    const req = {
      headers: authorization ? { authorization } : {},
      ip: "127.0.0.1",
      path: "/x",
    } as unknown as Request;
    const res = {
      setHeader(k: string, v: string) {
        headers[k.toLowerCase()] = v;
      },
      status(s: number) {
        status = s;
        return this;
      },
      json() {
        resolve({ status, headers });
        return this;
      },
    } as unknown as Response;
    const next: NextFunction = (err?: unknown) => resolve({ status: err ? 500 : 200, headers });
    mw(req, res, next);
  });
}

beforeEach(() => {
  calls.count = 0;
  calls.hang = false;
});

describe("basic auth cache", () => {
  it("runs scrypt once per header while cached, and again after the TTL", async () => {
    const mw = basicAuth(config, { cacheTtlMs: 100 });
    const ok = header("admin", "pw");
    expect((await run(mw, ok)).status).toBe(200);
    expect((await run(mw, ok)).status).toBe(200);
    expect((await run(mw, ok)).status).toBe(200);
    expect(calls.count).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect((await run(mw, ok)).status).toBe(200);
    expect(calls.count).toBe(2);
  });

  it("shares one verification between concurrent requests with the same header", async () => {
    const mw = basicAuth(config);
    const ok = header("admin", "pw");
    const results = await Promise.all(Array.from({ length: 8 }, () => run(mw, ok)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(calls.count).toBe(1);
  });

  it("does not cache failures", async () => {
    const mw = basicAuth(config);
    const bad = header("admin", "nope");
    expect((await run(mw, bad)).status).toBe(401);
    expect((await run(mw, bad)).status).toBe(401);
    expect(calls.count).toBe(2);
  });

  it("skips scrypt for requests without a Basic header", async () => {
    const mw = basicAuth(config);
    const res = await run(mw);
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe('Basic realm="FIONA", charset="UTF-8"');
    expect((await run(mw, "Bearer x")).status).toBe(401);
    expect(calls.count).toBe(0);
  });

  it("answers 429 when too many distinct verifications are running", async () => {
    calls.hang = true;
    const mw = basicAuth(config, { maxConcurrentVerifications: 2 });
    void run(mw, header("admin", "a"));
    void run(mw, header("admin", "b"));
    const third = await run(mw, header("admin", "c"));
    expect(third.status).toBe(429);
    expect(third.headers["retry-after"]).toBe("1");
    expect(calls.count).toBe(2);
  });

  it("lets everything through when no user is configured", async () => {
    const mw = basicAuth(undefined);
    expect((await run(mw)).status).toBe(200);
    expect(calls.count).toBe(0);
  });
});
