/**
 * The one place an SCU opens its connection to a DICOM peer: plain TCP, or DICOM TLS when the
 * destination has a `tls` section. TCP no-delay always (DIMSE is request/response).
 */
import fs from "node:fs";
import net from "node:net";
import tls from "node:tls";
import type { DicomPeer, DicomTlsClient } from "../config/dicom-fields.js";

export type { DicomTlsClient };

export interface DicomEndpoint {
  host: string;
  port: number;
  tls?: DicomTlsClient;
}

/**
 * Cipher suites of BCP 195 (RFC 9325 section 4.2): AEAD with forward secrecy only. TLS 1.3 suites are
 * all of that kind; Node's default list would also offer CBC suites for TLS 1.2.
 */
export const BCP195_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256",
  "DHE-RSA-AES256-GCM-SHA384",
].join(":");

export interface TlsClientOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  minVersion: tls.SecureVersion;
  ciphers: string;
  rejectUnauthorized: true;
}

/** A configured peer as an SCU addresses it: the one place calling AE and TLS are resolved. */
export function scuDestination(peer: DicomPeer, siteAeTitle: string) {
  return {
    host: peer.host,
    port: peer.port,
    calledAe: peer.aeTitle,
    callingAe: peer.callingAeTitle ?? siteAeTitle,
    ...(peer.tls !== undefined && { tls: peer.tls }),
  };
}

/** How logs and errors name a peer: `AE@host:port`. */
export function peerLabel(peer: { calledAe: string; host: string; port: number }): string {
  return `${peer.calledAe}@${peer.host}:${peer.port}`;
}

/** Node TLS options of a destination: the server certificate is always verified (never opt-out). */
export function tlsClientOptions(t: DicomTlsClient): TlsClientOptions {
  return {
    ...(t.ca !== undefined && { ca: fs.readFileSync(t.ca) }),
    ...(t.cert !== undefined && { cert: fs.readFileSync(t.cert) }),
    ...(t.key !== undefined && { key: fs.readFileSync(t.key) }),
    minVersion: t.minVersion ?? "TLSv1.2",
    ciphers: BCP195_CIPHERS,
    rejectUnauthorized: true,
  };
}

/**
 * Connect; `onReady` runs once the socket can carry PDUs (after the TLS handshake for TLS). Errors,
 * including an unreadable certificate file and a failed handshake, arrive as the socket's "error".
 */
export function connectDicom(ep: DicomEndpoint, onReady: () => void): net.Socket {
  if (ep.tls === undefined) {
    const socket = net.createConnection({ host: ep.host, port: ep.port, noDelay: true });
    socket.once("connect", onReady);
    return socket;
  }
  let options: TlsClientOptions;
  try {
    options = tlsClientOptions(ep.tls);
  } catch (err) {
    const socket = new net.Socket();
    process.nextTick(() => socket.destroy(err as Error));
    return socket;
  }
  const socket = tls.connect({ host: ep.host, port: ep.port, ...options });
  socket.setNoDelay(true);
  socket.once("secureConnect", onReady);
  return socket;
}
