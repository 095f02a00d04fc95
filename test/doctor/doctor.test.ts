import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FionaConfig } from "../../src/config/schema.js";
import type { CheckResult } from "../../src/doctor/check.js";
import { runChecks } from "../../src/doctor/cli.js";
import { hashPassword } from "../../src/web/password.js";
import { cleanup, freePort, testConfig } from "../support/env.js";
import { startStorescp, type Storescp } from "../support/peers.js";
import { newToken, startFionaSim, type FionaSim } from "../support/redcap-sim.js";
import { makeTlsFixtures, type TlsFixtures } from "../support/tls.js";
import { startPrivateRedis, type PrivateRedis } from "../ops/redis-server.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
let pacs: Storescp;
let rc: FionaSim;
let tls: TlsFixtures;
let longCert: string;
/** A Redis set up as a site should (AOF, noeviction), on a port of its own (17308). */
let durable: PrivateRedis;
const configs: FionaConfig[] = [];

const byName = (results: CheckResult[], name: string) => results.find((r) => r.name === name);

beforeAll(async () => {
  pacs = await startStorescp(mkdtempSync(path.join(tmpdir(), "fiona-doctor-pacs-")), ["+xa"]);
  rc = await startFionaSim({ perProject: ["PROJ"] });
  durable = await startPrivateRedis(17308, ["--appendonly", "yes", "--maxmemory-policy", "noeviction"]);
  tls = await makeTlsFixtures();
  longCert = path.join(tls.dir, "long.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "365",
    "-subj",
    "/CN=long",
    "-keyout",
    path.join(tls.dir, "long.key"),
    "-out",
    longCert,
  ]);
});

afterAll(async () => {
  await pacs?.stop();
  await rc?.sim.close();
  tls?.remove();
  for (const c of configs) await cleanup(c);
  await durable?.remove();
});

function config(good: boolean): FionaConfig {
  const cfg = testConfig({
    ...(good ? { secret: "doctor-secret-0123456789" } : {}),
    // Whatever the test machine's disk, a floor far below (good) or far above (bad) what it has free.
    disk: good ? { minFreeBytes: 1, minFreePercent: 0 } : { minFreeBytes: 2 ** 60, minFreePercent: 0 },
    ...(good ? { redis: { url: durable.url, prefix: "doctor-test", startLocal: false } } : {}),
    receiver: { tls: { port: 2762, cert: good ? longCert : tls.serverCert, key: tls.serverKey } },
    ...(good
      ? {
          web: {
            users: [
              { name: "ops", passwordHash: hashPassword("ops-password-123", { N: 2 ** 10 }), admin: true },
            ],
          },
        }
      : {}),
    projects: [{ name: "PROJ", destination: { aeTitle: "RESEARCH", host: "127.0.0.1", port: pacs.port } }],
    redcap: {
      url: rc.sim.url,
      projects: { incoming: { token: good ? rc.tokens.incoming : newToken() }, perProject: {} },
    },
  });
  chmodSync(cfg.dataDir, good ? 0o700 : 0o777);
  configs.push(cfg);
  return cfg;
}

describe("fiona doctor", () => {
  it("passes every check of a site set up right", async () => {
    const results = await runChecks(config(true));
    expect(results.filter((r) => r.status !== "ok")).toEqual([]);
    expect(results.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        "Redis",
        "Redis persistence",
        "data directory",
        "free space",
        "site secret",
        "users",
        "TLS receiver certificate",
        `C-ECHO RESEARCH@127.0.0.1:${pacs.port}`,
        "REDCap incoming",
      ]),
    );
  });

  it("names what is wrong and how to fix it", async () => {
    const cfg = config(false);
    cfg.projects.push({
      ...cfg.projects[0]!,
      name: "DOWN",
      destination: { aeTitle: "NOPE", host: "127.0.0.1", port: await freePort() },
    });
    const results = await runChecks(cfg);
    expect(byName(results, "site secret")).toMatchObject({
      status: "fail",
      fix: expect.stringMatching(/FIONA_SECRET/),
    });
    expect(byName(results, "data directory")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/open to other users/),
    });
    expect(byName(results, "TLS receiver certificate")).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(/expires in [01] days/),
    });
    expect(results.find((r) => r.name.startsWith("C-ECHO NOPE@"))).toMatchObject({ status: "fail" });
    expect(byName(results, `C-ECHO RESEARCH@127.0.0.1:${pacs.port}`)?.status).toBe("ok");
    expect(byName(results, "REDCap incoming")).toMatchObject({ status: "fail" });
    expect(byName(results, "users")).toMatchObject({
      status: "warn",
      fix: "fiona user add <name> --role admin",
    });
    expect(byName(results, "free space")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/refuses C-STOREs/),
    });
    expect(JSON.stringify(results)).not.toContain(rc.tokens.incoming);
  });

  it("exits 1 with a line per check and the fix, from the command line", async () => {
    const cfg = config(false);
    const file = path.join(cfg.dataDir, "doctor.config.json");
    writeFileSync(file, JSON.stringify({ ...cfg, log: { level: "warn" } }));
    const r = await run(process.execPath, ["bin/fiona.js", "--config", file, "doctor"], { cwd: ROOT }).then(
      (x) => ({ code: 0, stdout: x.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL site secret: .*\n {5}fix: /m);
    expect(r.stdout).toMatch(/^ok {3}Redis: reachable/m);
  }, 30_000);
});
