// Loaded with `node --import` into a role process: on SIGUSR2 it fails the way FIONA_TEST_FAULT says,
// outside any handler FIONA has, to check what the process writes when it dies.
process.on("SIGUSR2", () => {
  if (process.env.FIONA_TEST_FAULT === "warn") process.emitWarning("injected warning");
  else if (process.env.FIONA_TEST_FAULT === "reject") void Promise.reject(new Error("injected rejection"));
  else throw new Error("injected exception");
});
