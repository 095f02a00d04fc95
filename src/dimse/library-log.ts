/**
 * dcmjs-dimse (used for C-FIND, C-MOVE and the MPPS SCP) logs through loglevel to the console, as
 * plain text. Route its warnings and errors into pino, once per process, so every line stays one
 * JSON event; its info-level PDU traces are dropped.
 */
import dimse from "dcmjs-dimse";
import { log as processLog, type Logger } from "../log.js";

let routed = false;

export function routeLibraryLogging(log: Logger = processLog): void {
  if (routed) return;
  routed = true;
  const child = log.child({ component: "dcmjs-dimse" });
  dimse.log.methodFactory =
    (methodName) =>
    (...args: unknown[]) => {
      const msg = args.map(String).join(" ");
      if (methodName === "error" || methodName === "warn") child.warn({ event: `dimse-${methodName}` }, msg);
    };
  dimse.log.setLevel("warn");
  dimse.log.rebuild();
}
