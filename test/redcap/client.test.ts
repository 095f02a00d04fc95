import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearRedcapAlert, raiseRedcapAlert, readRedcapAlert } from "../../src/redcap/alert.js";
import { RedcapClient, encodeForm, redcapToken, tokenEnvName } from "../../src/redcap/client.js";
import { RedcapError } from "../../src/redcap/errors.js";
import { RedisCallLimiter } from "../../src/redcap/rate.js";
import { configSchema } from "../../src/config/schema.js";
import { REDIS_URL } from "../support/env.js";
import { capturedLogger, newToken, startFionaSim, type FionaSim } from "../support/redcap-sim.js";

let fs: FionaSim;
const client = (
  token = fs.tokens.incoming,
  extra: Partial<ConstructorParameters<typeof RedcapClient>[0]> = {},
) =>
  new RedcapClient({
    url: fs.sim.url,
    token,
    redcapProject: "incoming",
    retries: 0,
    retryDelayMs: 10,
    ...extra,
  });

async function failure(p: Promise<unknown>): Promise<RedcapError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RedcapError);
    return e as RedcapError;
  }
  throw new Error("expected a RedcapError");
}

beforeAll(async () => {
  fs = await startFionaSim({ perProject: ["PROJ"] });
});
afterAll(async () => {
  await fs?.sim.close();
});

describe("form encoding and tokens", () => {
  it("encodes arrays as PHP name[i]= and leaves undefined out", () => {
    expect(encodeForm({ content: "record", fields: ["a", "b"], x: undefined })).toBe(
      "content=record&fields%5B0%5D=a&fields%5B1%5D=b",
    );
  });
  it("takes tokens from the environment first, then the configuration", () => {
    const cfg = configSchema.parse({
      redcap: {
        url: "https://r.example/api/",
        projects: { incoming: { token: "ABC" }, perProject: { P1: { token: "DEF" } } },
      },
    }).redcap!;
    expect(redcapToken(cfg, "incoming", {})).toBe("ABC");
    expect(redcapToken(cfg, "project:P1", {})).toBe("DEF");
    expect(tokenEnvName("dataTransferProjects")).toBe("FIONA_REDCAP_TOKEN_DATA_TRANSFER_PROJECTS");
    expect(redcapToken(cfg, "incoming", { FIONA_REDCAP_TOKEN_INCOMING: "XYZ" })).toBe("XYZ");
    expect(redcapToken(cfg, "routing", {})).toBeUndefined();
    expect(() => configSchema.parse({ redcap: { url: "https://r.example/api" } })).toThrow(/api/);
  });
});

describe("REDCap client against the simulator", () => {
  it("answers 403 for a bad token, without the token in the error", async () => {
    const bad = newToken();
    const e = await failure(client(bad).exportRecords());
    expect(e).toMatchObject({ kind: "auth", status: 403, retryable: false });
    expect(e.message).toContain("You do not have permissions to use the API");
    expect(e.message).not.toContain(bad);
    expect(JSON.stringify(e)).not.toContain(bad);
  });

  it("answers 400 for an unknown export field and an unknown import field; imports are all-or-nothing", async () => {
    const c = client();
    const e = await failure(c.exportRecords({ fields: ["study_instance_uid", "nope"] }));
    expect(e).toMatchObject({ kind: "request", status: 400 });
    expect(e.message).toContain(`The following values in the parameter "fields" are not valid: 'nope'`);
    const e2 = await failure(c.importRecords([{ study_instance_uid: "1.2.3", bogus: "x" }]));
    expect(e2.message).toContain("not found in the project as real data fields: bogus");
    const e3 = await failure(
      c.importRecords([
        { study_instance_uid: "1.2.3", study_description: "ok" },
        {
          study_instance_uid: "1.2.4",
          redcap_repeat_instrument: "series",
          redcap_repeat_instance: "1",
          series_num_files: "many",
        },
      ]),
    );
    expect(e3.message).toContain(
      '"1.2.4","series_num_files","many","The value of series_num_files must be an integer."',
    );
    expect(await c.exportRecords({ records: ["1.2.3", "1.2.4"] })).toEqual([]);
  });

  it("imports repeating instruments, counts records, exports flat rows with fields, forms, records and filterLogic", async () => {
    const c = client();
    const n = await c.importRecords([
      { study_instance_uid: "9.1", study_description: "MR head", incoming_studies_complete: "2" },
      {
        study_instance_uid: "9.1",
        redcap_repeat_instrument: "series",
        redcap_repeat_instance: "1",
        series_instance_uid: "9.1.1",
        series_num_files: "3",
      },
      {
        study_instance_uid: "9.1",
        redcap_repeat_instrument: "series",
        redcap_repeat_instance: "new",
        series_instance_uid: "9.1.2",
      },
      {
        study_instance_uid: "9.2",
        redcap_repeat_instrument: "transfers",
        redcap_repeat_instance: "1",
        transfer_project_name: "PROJ",
        transfer_name: "P1",
      },
    ]);
    expect(n).toBe(2);
    const rows = await c.exportRecords({
      records: ["9.1"],
      fields: ["study_instance_uid", "series_instance_uid"],
    });
    expect(rows).toEqual([
      {
        study_instance_uid: "9.1",
        redcap_repeat_instrument: "",
        redcap_repeat_instance: "",
        series_instance_uid: "",
      },
      {
        study_instance_uid: "9.1",
        redcap_repeat_instrument: "series",
        redcap_repeat_instance: 1,
        series_instance_uid: "9.1.1",
      },
      {
        study_instance_uid: "9.1",
        redcap_repeat_instrument: "series",
        redcap_repeat_instance: 2,
        series_instance_uid: "9.1.2",
      },
    ]);
    // Without the record-ID field REDCap leaves the ID and repeat columns out.
    expect(await c.exportRecords({ records: ["9.1"], fields: ["study_description"] })).toEqual([
      { study_description: "MR head" },
      { study_description: "" },
      { study_description: "" },
    ]);
    const open = await c.exportRecords({
      fields: ["study_instance_uid"],
      forms: ["transfers"],
      filterLogic: '[transfer_project_name] <> "" and [transfer_date] = ""',
    });
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({
      study_instance_uid: "9.2",
      redcap_repeat_instance: 1,
      transfer_name: "P1",
      transfer_error___2: "0",
      transfers_complete: "0",
    });
    const label = await c.exportRecords({
      records: ["9.1"],
      fields: ["study_instance_uid"],
      forms: ["incoming_studies"],
      rawOrLabel: "label",
    });
    expect(label[0]).toMatchObject({ incoming_studies_complete: "Complete" });
    expect(await c.exportRecords({ dateRangeBegin: "2999-01-01 00:00:00" })).toEqual([]);
    expect(
      (await c.exportRecords({ dateRangeBegin: "2000-01-01 00:00:00", fields: ["study_instance_uid"] }))
        .length,
    ).toBeGreaterThan(0);
  });

  it("deletes (all-or-nothing), reads metadata and events, generates record names", async () => {
    const c = client();
    await c.importRecords([{ study_instance_uid: "del.1" }, { study_instance_uid: "del.2" }]);
    const e = await failure(c.deleteRecords(["del.1", "missing"]));
    expect(e.message).toContain("The following records do not exist: missing");
    expect(await c.deleteRecords(["del.1", "del.2"])).toBe(2);
    const md = await c.metadata({ fields: ["series_num_files"] });
    expect(md).toHaveLength(1);
    expect(md[0]).toMatchObject({
      field_name: "series_num_files",
      form_name: "series",
      text_validation_type_or_show_slider_number: "integer",
    });
    expect((await failure(c.events())).message).toContain("You cannot export events for classic projects");
    const pc = client(fs.tokens.perProject.PROJ!);
    expect((await pc.events()).map((e) => e.unique_event_name)).toEqual(["event_1_arm_1", "baseline_arm_1"]);
    expect(await pc.generateNextRecordName()).toBe("1");
    await pc.importRecords([{ record_id: "7", first_name: "7" }]);
    expect(await pc.generateNextRecordName()).toBe("8");
  });

  it("treats a 200 that is not JSON as an error, retries 5xx with backoff, and times out", async () => {
    fs.sim.inject({ kind: "html200" });
    const e = await failure(client().exportRecords());
    expect(e).toMatchObject({ kind: "response", retryable: true });
    fs.sim.inject({ kind: 500, times: 2 });
    const before = fs.sim.hits.length;
    const rows = await client(undefined, { retries: 2 }).exportRecords({
      records: ["9.1"],
      fields: ["study_instance_uid"],
    });
    expect(rows).toHaveLength(3);
    expect(fs.sim.hits.length - before).toBe(3);
    fs.sim.inject({ kind: 503, times: 2 });
    expect(await failure(client(undefined, { retries: 1 }).exportRecords())).toMatchObject({
      kind: "server",
      status: 503,
    });
    fs.sim.inject({ kind: "delay", delayMs: 600 });
    expect(await failure(client(undefined, { timeoutMs: 150 }).exportRecords())).toMatchObject({
      kind: "timeout",
    });
  });
});

describe("IP ban", () => {
  it("a 429 is not retried; the alert pauses every REDCap queue and is readable", async () => {
    const small = await startFionaSim({ banThreshold: 5 });
    const redis = new Redis(REDIS_URL);
    const prefix = `test-rc-${newToken().slice(0, 8)}`;
    const queues = [
      new Queue("redcap-push", { connection: redis, prefix }),
      new Queue("redcap-sync", { connection: redis, prefix }),
    ];
    const { log, text } = capturedLogger();
    try {
      const c = new RedcapClient({
        url: small.sim.url,
        token: small.tokens.incoming,
        redcapProject: "incoming",
        retries: 3,
        retryDelayMs: 10,
      });
      for (let i = 0; i < 5; i++) await c.exportRecords();
      const e = await failure(c.exportRecords());
      expect(e).toMatchObject({ kind: "banned", status: 429, retryable: false });
      expect(e.message).toContain("has been banned due to suspected abuse");
      expect(small.sim.hits.length).toBe(6); // no retries
      await raiseRedcapAlert(redis, prefix, queues, log, {
        redcapProject: e.redcapProject,
        status: 429,
        reason: e.message,
      });
      expect(await Promise.all(queues.map((q) => q.isPaused()))).toEqual([true, true]);
      expect(await readRedcapAlert(redis, prefix)).toMatchObject({ status: 429, redcapProject: "incoming" });
      expect(text()).toContain('"event":"redcap.banned"');
      expect(text()).not.toContain(small.tokens.incoming);
      await clearRedcapAlert(redis, prefix, queues);
      expect(await Promise.all(queues.map((q) => q.isPaused()))).toEqual([false, false]);
      expect(await readRedcapAlert(redis, prefix)).toBeUndefined();
    } finally {
      await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
      redis.disconnect();
      await small.sim.close();
    }
  });

  it("the shared call limit holds callers back within a sliding minute", async () => {
    const redis = new Redis(REDIS_URL);
    const key = `test-rc-rate-${newToken().slice(0, 8)}`;
    try {
      const a = new RedisCallLimiter(redis, key, 4);
      const b = new RedisCallLimiter(redis, key, 4);
      for (let i = 0; i < 2; i++) {
        await a.acquire();
        await b.acquire();
      }
      const late = await Promise.race([
        a.acquire().then(
          () => "acquired",
          () => "closed",
        ),
        new Promise((r) => setTimeout(() => r("waiting"), 400)),
      ]);
      expect(late).toBe("waiting");
    } finally {
      await redis.del(key);
      redis.disconnect();
    }
  });
});
