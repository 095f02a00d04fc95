import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, redactConfig } from "../../src/config/load.js";

const dir = mkdtempSync(path.join(tmpdir(), "fiona-config-"));
const file = (name: string, content: unknown) => {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
};

describe("loadConfig", () => {
  it("runs with no file at all, with defaults", () => {
    const c = loadConfig({ env: {} });
    expect(c.aeTitle).toBe("FIONA");
    expect(c.dicomPort).toBe(11112);
    expect(c.arrival.quietSeconds).toBe(15);
    expect(c.redis.url).toBe("redis://127.0.0.1:6379");
    expect(path.isAbsolute(c.dataDir)).toBe(true);
  });

  it("applies environment overrides over the file", () => {
    const f = file("env.json", { dicomPort: 4006, aeTitle: "SITEFIONA" });
    const c = loadConfig({
      file: f,
      env: {
        REDIS_URL: "redis://10.0.0.1:6380",
        FIONA_DATA_DIR: "/srv/fiona",
        FIONA_DICOM_PORT: "11113",
        FIONA_AE_TITLE: "ENVFIONA",
        FIONA_HTTP_PORT: "9090",
        FIONA_QUIET_SECONDS: "1",
      },
    });
    expect(c).toMatchObject({
      dicomPort: 11113,
      aeTitle: "ENVFIONA",
      httpPort: 9090,
      dataDir: "/srv/fiona",
      redis: { url: "redis://10.0.0.1:6380" },
      arrival: { quietSeconds: 1 },
    });
  });

  it("reads the path from FIONA_CONFIG", () => {
    const f = file("via-env.json", { httpPort: 8181 });
    expect(loadConfig({ env: { FIONA_CONFIG: f } }).httpPort).toBe(8181);
  });

  it("accepts the original FIONA keys", () => {
    const f = file("legacy.json", { DICOMPORT: "4006", DICOMAETITLE: "ABCDFIONA", DATADIR: "/data" });
    const c = loadConfig({ file: f, env: {} });
    expect(c).toMatchObject({ dicomPort: 4006, aeTitle: "ABCDFIONA", dataDir: "/data" });
  });

  it("accepts the incoming list's earlier name, quarantine", () => {
    const f = file("renamed.json", {
      quarantine: { retentionDays: 3 },
      schedules: { quarantineRetention: { pattern: "5 * * * *" } },
    });
    const c = loadConfig({ file: f, env: {} });
    expect(c.incoming.retentionDays).toBe(3);
    expect(c.schedules.incomingRetention.pattern).toBe("5 * * * *");
  });

  it("names the bad key in its error", () => {
    const f = file("bad.json", { receiver: { maxAssociations: "many" }, arrival: { quietSeconds: -1 } });
    expect(() => loadConfig({ file: f, env: {} })).toThrow(ConfigError);
    try {
      loadConfig({ file: f, env: {} });
    } catch (e) {
      expect((e as Error).message).toContain("receiver.maxAssociations");
      expect((e as Error).message).toContain("arrival.quietSeconds");
    }
  });

  it("rejects unknown keys and bad env values by name", () => {
    expect(() => loadConfig({ file: file("unknown.json", { dicomPrt: 1 }), env: {} })).toThrow(/dicomPrt/);
    expect(() => loadConfig({ env: { FIONA_DICOM_PORT: "eleven" } })).toThrow(/dicomPort/);
  });

  it("reports invalid JSON with the file name", () => {
    const f = file("broken.json", "{ not json");
    expect(() => loadConfig({ file: f, env: {} })).toThrow(/broken\.json is not valid JSON/);
  });

  it("redacts secrets and URL credentials", () => {
    const c = loadConfig({
      file: file("secret.json", { web: { basicAuth: { user: "admin", passwordHash: "scrypt$abc" } } }),
      env: { REDIS_URL: "redis://user:hunter2@redis:6379" },
    });
    const shown = JSON.stringify(redactConfig(c));
    expect(shown).not.toContain("hunter2");
    expect(shown).not.toContain("scrypt$abc");
    expect(shown).toContain('"user":"admin"');
  });
});
