#!/usr/bin/env node
// The TypeScript sources are compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import("../dist/cli/main.js").catch((err) => {
  if (err && err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/cli/main.js")) {
    console.error("fiona: not built yet; run `npm run build` (npm ci does it for you).");
    process.exit(1);
  }
  throw err;
});
