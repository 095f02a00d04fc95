/**
 * Determinism (two runs, fresh module instances, a separate Node process running the compiled engine)
 * and the fiona-legacy recipe end to end (reference 1.4 vectors through real files).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generateStudy } from "../support/generate.js";
import type { DeidContext } from "../../src/deid/index.js";
import { deidentify } from "../../src/deid/index.js";
import { ctx, dcmodify, deid, parse, readFile, tempDir, toDeflated, value } from "./helpers.js";

const { dir, cleanup } = tempDir("deid-determinism");
afterAll(cleanup);

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const files: string[] = [];
const contexts: DeidContext[] = [
  ctx({ name: "DET" }),
  ctx({ name: "DET", uidMode: "fiona-legacy", dateOffsetDays: 42, profile: "basic" }),
  ctx(
    { name: "DET2", privateTags: "keep", options: { cleanDescriptors: true } },
    { participant: "P_2", event: undefined },
  ),
];

beforeAll(() => {
  for (const ts of ["explicit-le", "implicit-le", "explicit-be"] as const) {
    const s = generateStudy({
      outDir: path.join(dir, ts),
      seed: "det",
      transferSyntax: ts,
      instancesPerSeries: 2,
    });
    files.push(...s.files);
    if (ts === "explicit-le") {
      const deflated = path.join(dir, "deflated.dcm");
      writeFileSync(deflated, toDeflated(readFile(s.files[0]!), s.sopClassUid, s.sopInstanceUids[0]!));
      files.push(deflated);
    }
  }
});

function digests(run: (bytes: Buffer, c: DeidContext) => Uint8Array): string[] {
  return files.flatMap((f) => contexts.map((c) => sha(run(readFile(f), c))));
}

describe("determinism", () => {
  it("gives identical bytes across runs and fresh module instances", async () => {
    const first = digests((b, c) => deid(b, c).bytes);
    expect(digests((b, c) => deid(b, c).bytes)).toEqual(first);
    vi.resetModules();
    const fresh = (await import("../../src/deid/index.js")) as typeof import("../../src/deid/index.js");
    expect(fresh.deidentify).not.toBe(deidentify);
    expect(
      digests((b, c) => {
        const r = fresh.deidentify(b, c);
        if (r.dropped !== undefined) throw new Error(r.dropped);
        return r.bytes;
      }),
    ).toEqual(first);
  });

  it("gives identical bytes in another Node process running the compiled engine", () => {
    const build = path.join(dir, "build");
    mkdirSync(build, { recursive: true });
    writeFileSync(path.join(build, "package.json"), '{ "type": "module" }\n');
    symlinkSync(path.join(ROOT, "node_modules"), path.join(build, "node_modules"));
    execFileSync(
      process.execPath,
      [
        path.join(ROOT, "node_modules/typescript/bin/tsc"),
        path.join(ROOT, "src/deid/index.ts"),
        ...["--outDir", path.join(build, "out"), "--rootDir", path.join(ROOT, "src"), "--module", "NodeNext"],
        ...[
          "--moduleResolution",
          "NodeNext",
          "--target",
          "ES2022",
          "--skipLibCheck",
          "--types",
          "node",
          "--strict",
        ],
      ],
      { stdio: "pipe" },
    );
    const child = path.join(build, "child.mjs");
    writeFileSync(
      child,
      `import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { deidentify } from "./out/deid/index.js";
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = job.files.flatMap((f) => job.contexts.map((c) => createHash("sha256").update(deidentify(readFileSync(f), c).bytes).digest("hex")));
process.stdout.write(JSON.stringify(out));
`,
    );
    const jobFile = path.join(build, "job.json");
    writeFileSync(jobFile, JSON.stringify({ files, contexts }));
    const other = JSON.parse(
      execFileSync(process.execPath, [child, jobFile], { encoding: "utf8" }),
    ) as string[];
    expect(other).toEqual(digests((b, c) => deid(b, c).bytes));
  });

  it("changes every UID when the secret changes (hmac)", () => {
    const a = deid(readFile(files[0]!), ctx({ name: "DET" }));
    const b = deid(readFile(files[0]!), { ...ctx({ name: "DET" }), secret: "another-secret-another-secret" });
    expect(b.sopInstanceUid).not.toBe(a.sopInstanceUid);
    expect(b.studyInstanceUid).not.toBe(a.studyInstanceUid);
  });
});

describe("fiona-legacy through real files (reference 1.4 vectors, project PROJ)", () => {
  it("reproduces SOPInstanceUID, StudyInstanceUID, StudyID and AccessionNumber bit for bit", () => {
    const s = generateStudy({
      outDir: path.join(dir, "legacy"),
      seed: "legacy",
      studyInstanceUid: "1.2.3.4.5",
      instancesPerSeries: 1,
    });
    const file = s.files[0]!;
    dcmodify(file, "(0008,0018)=1.2.3.4.5.6.7", "(0008,0050)=ACC123");
    const input = readFile(file);
    // the stored values are odd-length UIDs padded with NUL
    expect(input.indexOf(Buffer.from("1.2.3.4.5.6.7\u0000", "latin1"))).toBeGreaterThan(0);
    const r = deid(input, ctx({ name: "PROJ", uidMode: "fiona-legacy" }));
    expect(r.sopInstanceUid).toBe("1.3.6.1.4.1.45037.842986011114628520272412552124041481561242713");
    expect(r.studyInstanceUid).toBe("1.3.6.1.4.1.45037.300542716042123246925719515377418515396641215");
    const { dict, meta } = parse(r.bytes);
    expect(value(dict, "00200010")).toBe("3005427160421232");
    expect(value(dict, "00080050")).toBe("3196702294481401");
    expect(value(meta, "00020003")).toBe(r.sopInstanceUid);
    // hmac mode for the same file: 2.25 UIDs, keyed accession number
    const h = deid(input, ctx({ name: "PROJ" }));
    expect(h.sopInstanceUid).toMatch(/^2\.25\.[1-9]\d*$/);
    expect(value(parse(h.bytes).dict, "00080050")).not.toBe("3196702294481401");
  });

  it("a dropped instance is reported, not thrown", () => {
    const r = deidentify(
      readFile(files[0]!),
      ctx({ name: "DET", features: { burnedIn: "drop" } }, { classifyTypes: ["CHECKBURNEDINFO"] }),
    );
    expect(r.dropped).toMatch(/burned-in/);
  });
});
