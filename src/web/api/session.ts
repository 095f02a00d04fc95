/** /session: who is signed in, password sign-in and sign-out. */
import { clearBoardCsrfCookie } from "../board/xsrf-cookie.js";
import { checkWrite } from "../csrf.js";
import { jsonBody } from "./bodies.js";
import type { ApiContext } from "./context.js";
import { HttpError } from "./http-error.js";
import { principalOf, type Principal } from "./principal.js";
import { error, ok } from "./replies.js";
import type { ApiRoutes } from "./routes.js";
import { LoginRequired, Session } from "./schemas.js";
import { z } from "./zod.js";

const loginBody = z
  .object({ user: z.string().min(1).max(256), password: z.string().min(1).max(1024) })
  .strict();

function sessionBody(ctx: ApiContext, p: Principal) {
  const { cfg, users, sessions } = ctx;
  const projects = users.visibleProjects(p.user, cfg.projects).map((x) => x.name);
  return {
    user: p.user.name,
    role: p.user.role,
    admin: p.user.role === "admin",
    projects,
    via: p.via,
    csrfToken: p.session ? sessions.csrfToken(p.session) : null,
    ...(p.session ? { expiresAt: new Date(sessions.expiresAt(p.session)).toISOString() } : {}),
    sessionMinutes: cfg.web.sessionMinutes,
    showPatientIdentity: cfg.web.showPatientIdentity,
  };
}

/** GET and POST /session: answered before sign-in is required. */
export function registerSignIn(api: ApiRoutes, ctx: ApiContext): void {
  const { users, sessions, audit, logger, principals } = ctx;
  const loginInfo = () => ({ password: users.passwordLogin, proxy: users.proxyLogin });

  api.route(
    {
      method: "get",
      path: "/session",
      summary: "Who is signed in; the CSRF token for writes",
      description: "Behind a trusted proxy this also opens a session (Set-Cookie).",
      responses: { 200: ok(Session), 401: ok(LoginRequired, "Not signed in") },
    },
    async (req, res) => {
      let p: Principal;
      try {
        p = await principals.resolve(req);
      } catch (e) {
        if (e instanceof HttpError && e.status === 401) {
          res.status(401).json({ error: e.message, login: loginInfo() });
          return;
        }
        throw e;
      }
      // A trusted proxy has signed the user in: open the session here.
      if (!p.session && p.via === "proxy") {
        p = { ...p, session: sessions.create(p.user.name, p.via) };
        principals.setSession(req, res, p.session!);
      }
      res.json(sessionBody(ctx, p));
    },
  );

  api.route(
    {
      method: "post",
      path: "/session",
      summary: "Sign in with a user name and password (sets the session cookie)",
      public: true,
      body: loginBody,
      invalid: () => "send {user, password}",
      responses: {
        200: ok(Session),
        400: error("Invalid request, or no password accounts on this site"),
        401: error("Wrong user name or password"),
        403: error("Refused (cross-site)"),
        429: error("Too many attempts"),
      },
      before: [jsonBody],
    },
    async (req, res, input) => {
      const check = checkWrite(req, sessions, undefined);
      if (!check.ok) throw new HttpError(403, check.error);
      if (!users.passwordLogin) throw new HttpError(400, "this site has no password accounts");
      const body = input.body();
      const r = await users.checkPassword(body.user, body.password, req.socket.remoteAddress);
      if (!r.ok) {
        if (r.reason === "invalid") {
          logger.warn({ ip: req.ip }, "web: sign-in failed");
          await audit
            // An unknown name is not recorded: it may be a password typed into the wrong field.
            .record({
              user: users.get(body.user) ? body.user : "(unknown user)",
              action: "login-failed",
              ip: req.ip ?? "",
            })
            .catch(() => {});
          throw new HttpError(401, "wrong user name or password");
        }
        throw new HttpError(429, "too many sign-in attempts; wait a few minutes");
      }
      const session = sessions.create(r.user.name, "password", sessions.fingerprint(r.user.passwordHash));
      principals.setSession(req, res, session);
      await audit
        .record({ user: r.user.name, action: "login", via: "password", ip: req.ip ?? "" })
        .catch((e: Error) => logger.error({ err: e.message }, "web: audit write failed"));
      res.json(sessionBody(ctx, { user: r.user, via: "password", session }));
    },
  );
}

/** DELETE /session: behind sign-in. */
export function registerSignOut(api: ApiRoutes, ctx: ApiContext): void {
  const { sessions, audit, principals } = ctx;
  api.route(
    {
      method: "delete",
      path: "/session",
      summary: "Sign out",
      responses: { 204: { description: "Signed out" } },
    },
    async (req, res) => {
      const p = principalOf(res);
      if (p.session) sessions.revoke(p.session);
      res.append("Set-Cookie", sessions.clearCookie(principals.secureOf(req)));
      res.append("Set-Cookie", clearBoardCsrfCookie(principals.secureOf(req)));
      await audit
        .record({ user: p.user.name, action: "logout", via: p.via, ip: req.ip ?? "" })
        .catch(() => {});
      res.status(204).end();
    },
  );
}
