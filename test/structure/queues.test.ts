import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ALL_QUEUES } from "../../src/queues/index.js";

const README = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");

describe("the README's queue table", () => {
  it("lists every queue once, and no queue that does not exist", () => {
    const section = README.slice(
      README.indexOf("## Queues"),
      README.indexOf("\n## ", README.indexOf("## Queues") + 1),
    );
    const rows = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    expect([...rows].sort()).toEqual([...ALL_QUEUES].sort());
  });
});
