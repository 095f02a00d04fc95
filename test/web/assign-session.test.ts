import type { Request } from "express";
import { describe, expect, it } from "vitest";
import { checkWrite, crossSite } from "../../src/web/csrf.js";
import { parseCookies, SESSION_COOKIE, SessionManager, sessionKey } from "../../src/web/session.js";

const key = sessionKey("a-site-secret-of-some-length");

function manager(clock: { t: number }, idleMinutes = 30, maxHours = 12) {
  return new SessionManager({ key, idleMinutes, maxHours, now: () => clock.t });
}

function fakeRequest(method: string, headers: Record<string, string>): Request {
  return { method, headers: { host: "fiona.example:8080", ...headers } } as unknown as Request;
}

describe("sessions", () => {
  it("round-trips a signed session and refuses tampering", () => {
    const clock = { t: Date.parse("2025-01-01T10:00:00Z") };
    const m = manager(clock);
    const s = m.create("alice", "password", "fp123");
    const value = m.encode(s);
    expect(m.decode(value)).toEqual(s);

    const [payload, mac] = value.split(".") as [string, string];
    const forged = Buffer.from(JSON.stringify({ ...s, user: "root" })).toString("base64url");
    expect(m.decode(`${forged}.${mac}`)).toBeNull();
    expect(m.decode(`${payload}.${mac.slice(0, -2)}xx`)).toBeNull();
    expect(m.decode(payload)).toBeNull();
    expect(m.decode("")).toBeNull();
    expect(m.decode(undefined)).toBeNull();
    // Another key (another site or a restarted process without a secret) does not accept it.
    const other = new SessionManager({ key: sessionKey(undefined), idleMinutes: 30, now: () => clock.t });
    expect(other.decode(value)).toBeNull();
  });

  it("derives the key from the site secret, and a random one without", () => {
    expect(sessionKey("secret-one-xxxxxxxx").equals(sessionKey("secret-one-xxxxxxxx"))).toBe(true);
    expect(sessionKey("secret-one-xxxxxxxx").equals(sessionKey("secret-two-xxxxxxxx"))).toBe(false);
    expect(sessionKey(undefined).equals(sessionKey(undefined))).toBe(false);
  });

  it("times out after the idle period, and after the absolute lifetime despite activity", () => {
    const clock = { t: Date.parse("2025-01-01T10:00:00Z") };
    const m = manager(clock, 30, 2);
    let s = m.create("alice", "password");
    clock.t += 29 * 60_000;
    expect(m.decode(m.encode(s))).not.toBeNull();
    clock.t += 2 * 60_000;
    expect(m.decode(m.encode(s))).toBeNull();

    // Activity moves the idle deadline, but not past maxHours.
    clock.t = Date.parse("2025-01-01T10:00:00Z");
    s = m.create("alice", "password");
    for (let i = 0; i < 7; i++) {
      clock.t += 20 * 60_000;
      const touched = m.touch(s);
      expect(touched).toBeDefined();
      s = touched!;
      const alive = m.decode(m.encode(s));
      if (i < 5) expect(alive).not.toBeNull();
      else expect(alive).toBeNull();
    }
  });

  it("refreshes at most once a minute and reports the expiry", () => {
    const clock = { t: Date.parse("2025-01-01T10:00:00Z") };
    const m = manager(clock, 15);
    const s = m.create("bob", "proxy");
    expect(m.expiresAt(s)).toBe(clock.t + 15 * 60_000);
    clock.t += 30_000;
    expect(m.touch(s)).toBeUndefined();
    clock.t += 31_000;
    const t = m.touch(s)!;
    expect(m.expiresAt(t)).toBe(clock.t + 15 * 60_000);
  });

  it("revokes a session (sign-out)", () => {
    const clock = { t: Date.now() };
    const m = manager(clock);
    const s = m.create("alice", "password");
    const value = m.encode(s);
    m.revoke(s);
    expect(m.decode(value)).toBeNull();
    expect(m.decode(m.encode(m.create("alice", "password")))).not.toBeNull();
  });

  it("sets an HttpOnly SameSite=Strict cookie, Secure on HTTPS", () => {
    const m = manager({ t: Date.now() }, 30);
    const s = m.create("alice", "password");
    const plain = m.setCookie(s, false);
    expect(plain).toMatch(
      new RegExp(`^${SESSION_COOKIE}=[^;]+; Path=/; HttpOnly; SameSite=Strict; Max-Age=1800$`),
    );
    expect(m.setCookie(s, true)).toMatch(/; Secure$/);
    expect(m.clearCookie(false)).toContain("Max-Age=0");
    const cookieHeader = `other=1; ${plain.split(";")[0]}; x=2`;
    expect(m.fromCookieHeader(cookieHeader)).toEqual(s);
  });

  it("binds CSRF tokens to the session", () => {
    const m = manager({ t: Date.now() });
    const a = m.create("alice", "password");
    const b = m.create("alice", "password");
    const token = m.csrfToken(a);
    expect(m.checkCsrf(a, token)).toBe(true);
    expect(m.checkCsrf(b, token)).toBe(false);
    expect(m.checkCsrf(a, undefined)).toBe(false);
    expect(m.checkCsrf(a, `${token}x`)).toBe(false);
    expect(m.checkCsrf(a, "")).toBe(false);
  });

  it("parses cookie headers", () => {
    const c = parseCookies('a=1; b="two"; a=3; bad; =x; c=');
    expect(c.get("a")).toBe("1");
    expect(c.get("b")).toBe("two");
    expect(c.get("c")).toBe("");
    expect(c.has("bad")).toBe(false);
    expect(parseCookies(undefined).size).toBe(0);
  });
});

describe("CSRF rules", () => {
  const m = manager({ t: Date.now() });
  const s = m.create("alice", "password");
  const token = m.csrfToken(s);
  const json = { "content-type": "application/json" };

  it("lets reads through", () => {
    expect(checkWrite(fakeRequest("GET", {}), m, s).ok).toBe(true);
    expect(checkWrite(fakeRequest("GET", { "sec-fetch-site": "cross-site" }), m, s).ok).toBe(true);
  });

  it("requires the session's token on session writes", () => {
    expect(checkWrite(fakeRequest("POST", json), m, s).ok).toBe(false);
    expect(checkWrite(fakeRequest("DELETE", { "x-csrf-token": "nope" }), m, s).ok).toBe(false);
    expect(checkWrite(fakeRequest("PUT", { ...json, "x-csrf-token": token }), m, s).ok).toBe(true);
  });

  it("requires a non-simple content type on writes without a session", () => {
    expect(checkWrite(fakeRequest("POST", {}), m, undefined).ok).toBe(false);
    expect(checkWrite(fakeRequest("POST", { "content-type": "text/plain" }), m, undefined).ok).toBe(false);
    expect(
      checkWrite(fakeRequest("POST", { "content-type": "application/x-www-form-urlencoded" }), m, undefined)
        .ok,
    ).toBe(false);
    expect(
      checkWrite(fakeRequest("POST", { "content-type": "multipart/form-data; boundary=x" }), m, undefined).ok,
    ).toBe(false);
    expect(
      checkWrite(fakeRequest("POST", { "content-type": "application/json; charset=utf-8" }), m, undefined).ok,
    ).toBe(true);
    expect(checkWrite(fakeRequest("POST", { "content-type": "text/csv" }), m, undefined).ok).toBe(true);
  });

  it("refuses cross-site writes even with a valid token", () => {
    const headers = { ...json, "x-csrf-token": token };
    expect(checkWrite(fakeRequest("POST", { ...headers, "sec-fetch-site": "cross-site" }), m, s).ok).toBe(
      false,
    );
    expect(checkWrite(fakeRequest("POST", { ...headers, "sec-fetch-site": "same-site" }), m, s).ok).toBe(
      false,
    );
    expect(checkWrite(fakeRequest("POST", { ...headers, origin: "https://evil.example" }), m, s).ok).toBe(
      false,
    );
    expect(checkWrite(fakeRequest("POST", { ...headers, origin: "null" }), m, s).ok).toBe(false);
    expect(
      checkWrite(fakeRequest("POST", { ...headers, origin: "http://fiona.example:8080" }), m, s).ok,
    ).toBe(true);
    expect(checkWrite(fakeRequest("POST", { ...headers, "sec-fetch-site": "same-origin" }), m, s).ok).toBe(
      true,
    );
    expect(crossSite(fakeRequest("POST", {}))).toBe(false);
  });
});
