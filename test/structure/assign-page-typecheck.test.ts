/**
 * The Assign page's browser modules are plain JavaScript that TypeScript checks (tsconfig.web.json):
 * each opts in with `// @ts-check`, the project covers every one and finds no type error, and the
 * server hands them out as JavaScript, without which browsers refuse module scripts.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import express from "express";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ASSIGN_STATIC_DIR, assignPageRouter } from "../../src/web/assign/index.js";

const ROOT = path.resolve(import.meta.dirname, "../..");

const modules = readdirSync(ASSIGN_STATIC_DIR, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".js"))
  .sort();

function webProject(): ts.ParsedCommandLine {
  const file = path.join(ROOT, "tsconfig.web.json");
  const read = ts.readConfigFile(file, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  return ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, file);
}

describe("the Assign page's modules", () => {
  it("are loaded by the page as an ES module", () => {
    expect(modules).toContain("app.js");
    const html = readFileSync(path.join(ASSIGN_STATIC_DIR, "index.html"), "utf8");
    expect(html).toContain('<script type="module" src="app.js"></script>');
  });

  it("each start with // @ts-check", () => {
    const unchecked = modules.filter(
      (f) => !readFileSync(path.join(ASSIGN_STATIC_DIR, f), "utf8").startsWith("// @ts-check\n"),
    );
    expect(unchecked).toEqual([]);
  });

  it("type-check without errors under tsconfig.web.json, which covers all of them", () => {
    const project = webProject();
    const covered = new Set(project.fileNames.map((f) => path.resolve(f)));
    expect(modules.filter((f) => !covered.has(path.join(ASSIGN_STATIC_DIR, f)))).toEqual([]);
    const program = ts.createProgram(project.fileNames, project.options);
    const diagnostics = [...project.errors, ...ts.getPreEmitDiagnostics(program)];
    const report = ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => ROOT,
      getNewLine: () => "\n",
    });
    expect(report).toBe("");
  });

  it("are served as JavaScript", async () => {
    const server = express().use("/assign", assignPageRouter()).listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      for (const f of modules) {
        const res = await fetch(`http://127.0.0.1:${port}/assign/${f}`);
        expect([f, res.status, res.headers.get("content-type")]).toEqual([
          f,
          200,
          expect.stringMatching(/^text\/javascript\b/),
        ]);
      }
    } finally {
      server.close();
    }
  });
});
