import { startFionaSim } from "./fiona-sim.js";

/**
 * `fiona dev redcap` in a checkout (development only, not part of the build): start the REDCap API
 * simulator the tests use, with FIONA's projects, and print its URL and tokens.
 *   tsx dev/redcap/cli.ts --port 8090 --host 127.0.0.1 --ban-threshold 600
 */
async function main(o: { port: number; host: string; banThreshold: number }): Promise<void> {
  const perProject = (process.env.FIONA_DEV_REDCAP_PROJECTS ?? "PROJ")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const { sim, tokens } = await startFionaSim({ ...o, perProject });
  // Development tokens of a throw-away simulator, printed so they can be pasted into a config.
  console.log(
    JSON.stringify(
      {
        redcap: {
          url: sim.url,
          projects: {
            ...Object.fromEntries(
              Object.entries(tokens)
                .filter(([k]) => k !== "perProject")
                .map(([k, v]) => [k, { token: v }]),
            ),
            perProject: Object.fromEntries(
              Object.entries(tokens.perProject).map(([k, v]) => [k, { token: v }]),
            ),
          },
        },
      },
      null,
      2,
    ),
  );
  await new Promise<void>((resolve) => {
    const stop = () => void sim.close().then(resolve);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
await main({
  port: Number(arg("port", "8090")),
  host: arg("host", "127.0.0.1"),
  banThreshold: Number(arg("ban-threshold", "600")),
});
