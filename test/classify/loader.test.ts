import { mkdtemp, rm, writeFile, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  loadRulesFile,
  RulesError,
  watchRules,
  type CompiledRules,
  type RulesWatch,
} from "../../src/classify/index.js";

const rulesOf = (type: string) => JSON.stringify([{ type, rules: [] }]);
const types = (r: CompiledRules) => r.definitions.map((d) => d.type);

/** Resolve when `check` holds, polling (fs.watch timing differs between platforms). */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

let dir: string;
let file: string;
let watch: RulesWatch | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "fiona-rules-"));
  file = path.join(dir, "classifyRules.json");
});
afterEach(async () => {
  watch?.close();
  watch = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe("loadRulesFile", () => {
  it("reads and compiles a file", async () => {
    await writeFile(file, rulesOf("A"));
    expect(types(await loadRulesFile(file))).toEqual(["A"]);
  });

  it("reports invalid JSON with the file name", async () => {
    await writeFile(file, "[{");
    await expect(loadRulesFile(file)).rejects.toThrow(RulesError);
    await expect(loadRulesFile(file)).rejects.toThrow(/classifyRules\.json: .*invalid JSON/s);
  });
});

describe("watchRules", () => {
  it("reloads on change and keeps the last good rules on a bad edit", async () => {
    await writeFile(file, rulesOf("A"));
    const changes: string[][] = [];
    const errors: Error[] = [];
    watch = await watchRules(
      file,
      (r) => changes.push(types(r)),
      (e) => errors.push(e),
      { debounceMs: 30 },
    );
    expect(types(watch.current())).toEqual(["A"]);

    await writeFile(file, rulesOf("B"));
    await until(() => changes.length === 1);
    expect(types(watch.current())).toEqual(["B"]);

    await writeFile(file, JSON.stringify([{ type: "C", rules: [{ rule: "MISSING" }] }]));
    await until(() => errors.length === 1);
    expect(errors[0]!.message).toMatch(/unknown rule id "MISSING"/);
    expect(types(watch.current())).toEqual(["B"]);

    // Editors that save through a temporary file and rename are followed too.
    const tmp = path.join(dir, ".classifyRules.json.swp");
    await writeFile(tmp, rulesOf("D"));
    await rename(tmp, file);
    await until(() => changes.length === 2);
    expect(types(watch.current())).toEqual(["D"]);
    expect(changes).toEqual([["B"], ["D"]]);
  });

  it("ignores other files in the directory and stops after close()", async () => {
    await writeFile(file, rulesOf("A"));
    const changes: string[][] = [];
    watch = await watchRules(
      file,
      (r) => changes.push(types(r)),
      () => {},
      { debounceMs: 30 },
    );
    await writeFile(path.join(dir, "other.json"), "not json");
    watch.close();
    await writeFile(file, rulesOf("B"));
    await new Promise((r) => setTimeout(r, 200));
    expect(changes).toEqual([]);
    expect(types(watch.current())).toEqual(["A"]);
  });

  it("rejects when the first load fails", async () => {
    await writeFile(file, "{}");
    await expect(
      watchRules(
        file,
        () => {},
        () => {},
      ),
    ).rejects.toThrow(/JSON array/);
  });
});
