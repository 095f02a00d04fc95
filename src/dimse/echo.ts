/**
 * C-ECHO SCU (Verification) on FIONA's own association layer: one association, one echo. Resolves
 * when the peer answered Success; rejects with the reason otherwise (rejected association, timeout,
 * network or TLS error, another status).
 */
import { VERIFICATION_CONTEXT, openAssociation } from "./association.js";
import { peerLabel, type DicomTlsClient } from "./connect.js";
import { SendError } from "./errors.js";

export interface EchoDestination {
  host: string;
  port: number;
  calledAe: string;
  callingAe: string;
  tls?: DicomTlsClient;
}

export async function cEcho(dest: EchoDestination, timeoutMs = 20_000): Promise<void> {
  const label = peerLabel(dest);
  let association;
  try {
    association = await openAssociation({ ...dest, timeoutMs }, [VERIFICATION_CONTEXT]);
  } catch (err) {
    const why = err instanceof SendError ? err.detail : (err as Error).message;
    throw new Error(`C-ECHO to ${label}: ${why}`, { cause: err });
  }
  try {
    const outcome = await association.echo();
    if (outcome.kind !== "success")
      throw new Error(`C-ECHO to ${label}: ${outcome.reason ?? `status ${outcome.status}`}`);
  } catch (err) {
    association.abort();
    const why = err instanceof SendError ? err.detail : (err as Error).message;
    throw new Error(why.startsWith("C-ECHO") ? why : `C-ECHO to ${label}: ${why}`, { cause: err });
  }
  await association.release();
}
