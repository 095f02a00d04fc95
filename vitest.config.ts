import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests share two cores with real peers (dcmtk, Redis); keep parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
