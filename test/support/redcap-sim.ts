import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export { newToken, startFionaSim, type FionaSim } from "../../dev/redcap/fiona-sim.js";

/** A logger whose output is kept in memory (to assert what was, and was not, logged). */
export function capturedLogger(): { log: Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  return { log: pino({ level: "debug" }, stream), text: () => chunks.join("") };
}
