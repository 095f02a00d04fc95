/** Timing helpers for benchmarks against real peers (the peers themselves: test/support/peers.ts). */
import { spawn, spawnSync } from "node:child_process";
import { startStorescp } from "../../test/support/peers.js";

export interface Peer {
  port: number;
  aet: string;
  stop(): Promise<void>;
}

/** dcmtk storescp writing every received file to dir: the reference receiver. */
export const storescpPeer = async (dir: string): Promise<Peer> => {
  const s = await startStorescp(dir, ["+xa"], { verbose: false, bitPreserving: false });
  return { port: s.port, aet: "RESEARCH", stop: s.stop };
};

export const NODELAY_ENV = { ...process.env, TCP_NODELAY: "1" };

const storescuArgs = (dir: string, port: number, calledAe: string) => [
  "-aec",
  calledAe,
  "-aet",
  "BENCH",
  "+sd",
  "+r",
  "127.0.0.1",
  String(port),
  dir,
];

/** Wall time of storescu sending every file under dir over one association. */
export function timeStorescu(dir: string, port: number, calledAe: string): number {
  const t0 = performance.now();
  const r = spawnSync("storescu", storescuArgs(dir, port, calledAe), { env: NODELAY_ENV, encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`storescu failed: ${r.stderr.slice(0, 500)}`);
  return ms;
}

/** Wall time of several storescu processes in parallel, one folder (association) each. */
export async function timeParallelStorescu(dirs: string[], port: number, calledAe: string): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    dirs.map(
      (dir) =>
        new Promise<void>((resolve, reject) => {
          const c = spawn("storescu", storescuArgs(dir, port, calledAe), {
            env: NODELAY_ENV,
            stdio: "ignore",
          });
          c.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`storescu exited ${code}`))));
        }),
    ),
  );
  return performance.now() - t0;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
