/**
 * Connection admission: the ARTIM timer, per-peer and total connection limits, and the loopback echo
 * endpoint for the heartbeat. Loopback addresses stand in for hosts: 127.0.0.2 and 127.0.0.3 are
 * separate peers (Linux routes all of 127/8 to lo), so one "host" can flood while another is served.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cEcho } from "../../src/dimse/echo.js";
import { generateStudy } from "../support/generate.js";
import {
  archivedFiles,
  run,
  startTestReceiver,
  storescu,
  tempDir,
  waitFor,
  type TestReceiver,
} from "./helpers.js";

const VERIFICATION = "1.2.840.10008.1.1";
const IMPLICIT_LE = "1.2.840.10008.1.2";

/** A valid A-ASSOCIATE-RQ proposing Verification only (PS3.8 9.3.2). */
function associateRq(calling = "ADMISSION"): Buffer {
  const item = (type: number, body: Buffer) => {
    const h = Buffer.from([type, 0, 0, 0]);
    h.writeUInt16BE(body.length, 2);
    return Buffer.concat([h, body]);
  };
  const ae = (s: string) => Buffer.from(s.padEnd(16, " "), "latin1");
  const maxLen = Buffer.alloc(4);
  maxLen.writeUInt32BE(16384, 0);
  const body = Buffer.concat([
    Buffer.from([0, 1, 0, 0]),
    ae("FIONA"),
    ae(calling),
    Buffer.alloc(32),
    item(0x10, Buffer.from("1.2.840.10008.3.1.1.1")),
    item(
      0x20,
      Buffer.concat([
        Buffer.from([1, 0, 0, 0]),
        item(0x30, Buffer.from(VERIFICATION)),
        item(0x40, Buffer.from(IMPLICIT_LE)),
      ]),
    ),
    item(0x50, Buffer.concat([item(0x51, maxLen), item(0x52, Buffer.from("1.2.3.4.5.6.7"))])),
  ]);
  const h = Buffer.from([0x01, 0, 0, 0, 0, 0]);
  h.writeUInt32BE(body.length, 2);
  return Buffer.concat([h, body]);
}

const RELEASE_RQ = Buffer.from([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]);

/** A raw TCP peer from a chosen loopback address that records PDU types received and when it closed. */
class Peer {
  readonly received: number[] = [];
  readonly openedAt = Date.now();
  closedAt?: number;
  private buf = Buffer.alloc(0);
  private constructor(readonly socket: net.Socket) {}

  static connect(port: number, localAddress = "127.0.0.1"): Promise<Peer> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress, noDelay: true });
      const peer = new Peer(socket);
      socket.on("data", (d: Buffer) => {
        peer.buf = Buffer.concat([peer.buf, d]);
        while (peer.buf.length >= 6 && peer.buf.length >= 6 + peer.buf.readUInt32BE(2)) {
          peer.received.push(peer.buf[0]!);
          peer.buf = peer.buf.subarray(6 + peer.buf.readUInt32BE(2));
        }
      });
      socket.on("error", () => {});
      socket.on("close", () => (peer.closedAt ??= Date.now()));
      // Resolves on connect, and also when refused/reset at once (then already closed).
      socket.once("connect", () => resolve(peer));
      socket.once("close", () => resolve(peer));
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Milliseconds from opening until the receiver closed the connection (waits up to `ms`). */
  async closedWithin(ms: number): Promise<number | undefined> {
    await waitFor(() => this.closed, ms).catch(() => {});
    return this.closedAt === undefined ? undefined : this.closedAt - this.openedAt;
  }

  async until(type: number, ms = 3000): Promise<void> {
    await waitFor(() => this.received.includes(type) || this.closed, ms);
    if (!this.received.includes(type)) throw new Error(`no PDU 0x0${type} (got ${this.received.join(",")})`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe("connection admission", () => {
  let rx: TestReceiver | undefined;
  const peers: Peer[] = [];
  let genDir: string;
  beforeAll(() => {
    genDir = tempDir("admission");
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.destroy();
    await rx?.close();
    rx = undefined;
  });
  afterAll(() => fs.rmSync(genDir, { recursive: true, force: true }));

  async function peer(localAddress?: string): Promise<Peer> {
    const p = await Peer.connect(rx!.handle.port, localAddress);
    peers.push(p);
    return p;
  }

  it("ARTIM closes silent and half-sent connections, and peers that linger after RJ or RP", async () => {
    rx = await startTestReceiver({ receiver: { artimSeconds: 1, allowedCallingAeTitles: ["GOOD"] } });
    const silent = await peer();
    const half = await peer();
    const rq = associateRq("GOOD");
    half.socket.write(rq.subarray(0, rq.length >> 1));
    // Rejected (calling AE not allowed) and released peers that never close their end.
    const rejected = await peer();
    rejected.socket.write(associateRq("BAD"));
    const released = await peer();
    released.socket.write(associateRq("GOOD"));
    await released.until(0x02);
    released.socket.write(RELEASE_RQ);
    await released.until(0x06);
    await rejected.until(0x03);

    const [tSilent, tHalf, tRejected, tReleased] = await Promise.all(
      [silent, half, rejected, released].map((p) => p.closedWithin(4000)),
    );
    for (const [what, t] of Object.entries({ tSilent, tHalf, tRejected, tReleased })) {
      expect(t, `${what}: closed by the receiver`).toBeDefined();
      expect(t!, what).toBeLessThan(3000);
    }
    // Not closed before the timer: ARTIM is 1 s, not "at once".
    expect(tSilent!).toBeGreaterThanOrEqual(800);
    expect(tHalf!).toBeGreaterThanOrEqual(800);
    // Nothing but an optional A-ABORT to the incomplete ones.
    for (const p of [silent, half]) expect(p.received.every((t) => t === 0x07)).toBe(true);
    const ok = await run("echoscu", ["-aet", "GOOD", "-aec", "FIONA", "127.0.0.1", String(rx.handle.port)]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("an idle flood from one address does not lock out another one, nor the heartbeat endpoint", async () => {
    rx = await startTestReceiver({});
    const port = rx.handle.port;
    const perPeer = rx.cfg.receiver.maxConnectionsPerPeer;
    const study = generateStudy({
      outDir: path.join(genDir, "flood"),
      seed: "flood",
      series: 3,
      instancesPerSeries: 2,
      fileSize: 2048,
    });

    // 200 sockets from 127.0.0.2 that never send; one that is closed is opened again.
    const flood = new Set<Peer>();
    let flooding = true;
    let reopened = 0;
    const keep = async (): Promise<void> => {
      const p = await Peer.connect(port, "127.0.0.2");
      flood.add(p);
      const again = () => {
        flood.delete(p);
        setTimeout(() => {
          if (!flooding) return;
          reopened++;
          void keep();
        }, 20);
      };
      if (p.closed) again();
      else p.socket.once("close", again);
    };
    try {
      await Promise.all(Array.from({ length: 200 }, keep));
      await new Promise((r) => setTimeout(r, 300));
      const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
        const t0 = Date.now();
        const v = await f();
        expect(Date.now() - t0, `${what} took`).toBeLessThan(5000);
        return v;
      };
      const echo = await timed("echoscu", () =>
        run("echoscu", ["-to", "5", "-aec", "FIONA", "127.0.0.1", String(port)]),
      );
      expect(echo.code, echo.stderr).toBe(0);
      const store = await timed("storescu", () => storescu(port, study.files, ["-to", "5"]));
      expect(store.code, store.stderr).toBe(0);
      expect(archivedFiles(rx.archive)).toHaveLength(study.files.length);
      const { host, port: echoPort } = rx.handle.echoEndpoint;
      await timed("heartbeat C-ECHO", () =>
        cEcho({ host, port: echoPort, calledAe: "FIONA", callingAe: "HEARTBEAT" }, 5000),
      );

      // Stop re-opening; after a settle, what is still open is what the receiver holds.
      flooding = false;
      await new Promise((r) => setTimeout(r, 300));
      const open = [...flood].filter((p) => !p.closed).length;
      expect(reopened, "the receiver closed flood connections").toBeGreaterThan(0);
      expect(open).toBeGreaterThan(0);
      expect(open).toBeLessThanOrEqual(perPeer);
    } finally {
      flooding = false;
      for (const p of flood) p.destroy();
    }
  });

  it("when the total is full, the oldest pending connection of the busiest address makes room", async () => {
    rx = await startTestReceiver({ receiver: { maxConnections: 8, maxConnectionsPerPeer: 8 } });
    const idle: Peer[] = [];
    for (let i = 0; i < 8; i++) {
      idle.push(await peer("127.0.0.2"));
      await new Promise((r) => setTimeout(r, 20)); // a clear order of age
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(idle.filter((p) => p.closed)).toHaveLength(0);

    const other = await peer("127.0.0.3");
    other.socket.write(associateRq());
    await other.until(0x02);
    await waitFor(() => idle[0]!.closed, 2000);
    expect(idle.map((p) => p.closed)).toEqual([true, false, false, false, false, false, false, false]);
    // The heartbeat endpoint is outside the limits.
    const { host, port } = rx.handle.echoEndpoint;
    await cEcho({ host, port, calledAe: "FIONA", callingAe: "HEARTBEAT" }, 5000);
    other.socket.write(RELEASE_RQ);
    await other.until(0x06);
  });

  it("when the total is full of associations, a new connection is refused", async () => {
    rx = await startTestReceiver({ receiver: { maxConnections: 2, maxConnectionsPerPeer: 8 } });
    const a = await peer();
    const b = await peer();
    for (const p of [a, b]) {
      p.socket.write(associateRq());
      await p.until(0x02);
    }
    const late = await peer("127.0.0.3");
    late.socket.write(associateRq());
    expect(await late.closedWithin(2000), "refused connection closed").toBeDefined();
    expect(late.received).not.toContain(0x02);
    expect(a.closed || b.closed).toBe(false);
    a.socket.write(RELEASE_RQ);
    await a.until(0x06);
  });
});
