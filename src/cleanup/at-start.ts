/**
 * What a worker process does once when it starts, in the background: sweep what crashed writers left
 * (src/cleanup/orphans.ts) and, when it works the ingest queue, reconcile the archive with ingest
 * (src/cleanup/reconcile.ts). The schedules do the same every minute; at start it waits its turn
 * rather than skipping, so that this host's crashed processes are judged by this host.
 */
import { sweepOrphans } from "./orphans.js";
import { runReconcile, type ReconcileDeps } from "./reconcile.js";

type StartupHousekeepingDeps = Omit<ReconcileDeps, "signal">;

const WAIT_MS = 120_000;

/** Start the passes; the returned stop() ends them between folders and waits for that. */
export function startupHousekeeping(
  deps: StartupHousekeepingDeps,
  opts: { reconcile: boolean },
): { stop(): Promise<void> } {
  const abort = new AbortController();
  const d = { ...deps, signal: abort.signal };
  const fail = (what: string) => (e: Error) => {
    // Redis closing under a pass that was told to stop is no failure.
    if (!abort.signal.aborted) deps.log.warn({ event: what, err: e.message }, `${what} at start failed`);
  };
  const done = (async () => {
    if (deps.cfg.schedules.orphans.enabled) await sweepOrphans(d, { waitMs: WAIT_MS }).catch(fail("orphans"));
    if (opts.reconcile && deps.cfg.schedules.reconcile.enabled && !abort.signal.aborted)
      await runReconcile(d, { waitMs: WAIT_MS }).catch(fail("reconcile"));
  })();
  return {
    async stop() {
      abort.abort();
      await done;
    },
  };
}
