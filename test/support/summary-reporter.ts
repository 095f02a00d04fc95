import type { Reporter } from "vitest/reporters";
import type { RunnerTask, RunnerTestFile } from "vitest";

/** Prints the plain closing line CI reads: "vitest: N passed, N failed, N skipped". */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: RunnerTask) => {
      if (t.type === "suite") return t.tasks.forEach(walk);
      if (t.mode === "skip" || t.mode === "todo") skipped++;
      else if (t.result?.state === "pass") passed++;
      else if (t.result?.state === "fail") failed++;
      else skipped++;
    };
    for (const f of files) {
      if (f.result?.state === "fail" && f.tasks.length === 0) failed++; // a file that failed to load
      f.tasks.forEach(walk);
    }
    failed += errors.length;
    console.log(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
}
