/**
 * A C-ECHO SCU (Verification) on dcmjs-dimse's Client, as find.ts does C-FIND: one association, one
 * echo. Resolves when the peer answered Success; rejects with the reason otherwise (rejected
 * association, timeout, network error, another status).
 */
import dimse from "dcmjs-dimse";
import type { FindDestination } from "./find.js";

const { Client } = dimse;
const { CEchoRequest } = dimse.requests;
const { Status } = dimse.constants;

export type EchoDestination = FindDestination;

export function cEcho(dest: EchoDestination, timeoutMs = 20_000): Promise<void> {
  if (dimse.log.getLevel() < dimse.log.levels.WARN) dimse.log.setLevel("warn");
  const label = `${dest.calledAe}@${dest.host}:${dest.port}`;
  return new Promise<void>((resolve, reject) => {
    const client = new Client();
    const request = new CEchoRequest();
    let status: number | undefined;
    let error: string | undefined;
    request.on("response", (response) => {
      status = response.getStatus();
    });
    client.addRequest(request);
    client.on("associationRejected", (r: { result: number; source: number; reason: number }) => {
      error = `association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`;
    });
    client.on("networkError", (e: Error) => {
      error ??= e.message;
    });
    // A hung peer: dcmjs-dimse's own timeouts cover each step; this bounds the whole exchange.
    const timer = setTimeout(() => {
      error ??= `no answer within ${timeoutMs} ms`;
      client.abort();
      finish();
    }, timeoutMs + 1000);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (status === Status.Success) resolve();
      else
        reject(
          new Error(
            `C-ECHO to ${label}: ${error ?? (status === undefined ? "no response" : `status 0x${status.toString(16).padStart(4, "0")}`)}`,
          ),
        );
    };
    client.on("closed", finish);
    client.send(dest.host, dest.port, dest.callingAe, dest.calledAe, {
      connectTimeout: timeoutMs,
      associationTimeout: timeoutMs,
      pduTimeout: timeoutMs,
      associationLingerTimeout: 0,
    });
  });
}
