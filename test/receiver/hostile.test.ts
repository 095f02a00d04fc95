/**
 * Hostile and malformed Upper Layer input (PS3.8) against a real receiver over raw sockets: invalid but
 * parseable A-ASSOCIATE-RQs get an A-ASSOCIATE-RJ (permanent), unparseable input an A-ABORT, and in
 * every case the connection ends, exactly one "association" event is logged and dcmtk peers are still
 * served. Then a seeded, bounded fuzz over A-ASSOCIATE-RQ and P-DATA-TF bytes.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import {
  archivedFiles,
  run,
  startTestReceiver,
  storescu,
  tempDir,
  waitFor,
  type TestReceiver,
} from "./helpers.js";
import { commandSet, RawScu, splitPart10 } from "./raw-scu.js";

const VERIFICATION = "1.2.840.10008.1.1";
const MR = "1.2.840.10008.5.1.4.1.1.4";
const CT = "1.2.840.10008.5.1.4.1.1.2";
const IMPLICIT_LE = "1.2.840.10008.1.2";
const EXPLICIT_LE = "1.2.840.10008.1.2.1";
const ARTIM_S = 1;
const MAX_PDU = 16_384;
const PDU = { RQ: 0x01, AC: 0x02, RJ: 0x03, PDATA: 0x04, RELEASE_RQ: 0x05, RELEASE_RP: 0x06, ABORT: 0x07 };

// ---------------------------------------------------------------- byte builders

/** A length field in a built PDU stream (offset of the field, 2 or 4 bytes, big endian). */
interface LengthField {
  offset: number;
  size: 2 | 4;
}
interface Built {
  bytes: Buffer;
  lengths: LengthField[];
}

/** Items are [type, body parts]; nested items are written with their 2-byte length recorded. */
type Part = Buffer | { type: number; body: Part[] };

function build(pduType: number, body: Part[]): Built {
  const chunks: Buffer[] = [];
  const lengths: LengthField[] = [{ offset: 2, size: 4 }];
  let offset = 6;
  const write = (parts: Part[]): number => {
    let total = 0;
    for (const p of parts) {
      if (Buffer.isBuffer(p)) {
        chunks.push(p);
        offset += p.length;
        total += p.length;
        continue;
      }
      const head = Buffer.from([p.type, 0, 0, 0]);
      chunks.push(head);
      lengths.push({ offset: offset + 2, size: 2 });
      offset += 4;
      const len = write(p.body);
      head.writeUInt16BE(len, 2);
      total += 4 + len;
    }
    return total;
  };
  const len = write(body);
  const head = Buffer.alloc(6);
  head.writeUInt8(pduType, 0);
  head.writeUInt32BE(len, 2);
  return { bytes: Buffer.concat([head, ...chunks]), lengths };
}

function ae(title: string | Buffer): Buffer {
  if (Buffer.isBuffer(title)) return title;
  const b = Buffer.alloc(16, 0x20);
  b.write(title, "latin1");
  return b;
}

interface Pc {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

function associateRq(
  opts: { called?: string | Buffer; calling?: string | Buffer; appContext?: boolean; contexts?: Pc[] } = {},
): Built {
  const fixed = Buffer.concat([
    Buffer.from([0, 1, 0, 0]),
    ae(opts.called ?? "FIONA"),
    ae(opts.calling ?? "HOSTILE"),
    Buffer.alloc(32),
  ]);
  const contexts = opts.contexts ?? [
    { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
    { id: 3, abstractSyntax: MR, transferSyntaxes: [EXPLICIT_LE] },
  ];
  const maxLen = Buffer.alloc(4);
  maxLen.writeUInt32BE(MAX_PDU, 0);
  return build(PDU.RQ, [
    fixed,
    ...(opts.appContext === false ? [] : [{ type: 0x10, body: [Buffer.from("1.2.840.10008.3.1.1.1")] }]),
    ...contexts.map((pc) => ({
      type: 0x20,
      body: [
        Buffer.from([pc.id, 0, 0, 0]),
        { type: 0x30, body: [Buffer.from(pc.abstractSyntax)] },
        ...pc.transferSyntaxes.map((ts) => ({ type: 0x40, body: [Buffer.from(ts)] })),
      ],
    })),
    {
      type: 0x50,
      body: [
        { type: 0x51, body: [maxLen] },
        { type: 0x52, body: [Buffer.from("1.2.3.4.5.6.7")] },
      ],
    },
  ]);
}

/** P-DATA-TF PDUs carrying one message (command, then dataset fragments), with every length field. */
function pdataStream(pcId: number, command: Buffer, dataset: Buffer, fragment = 1024): Built {
  const pdus: Buffer[] = [];
  const lengths: LengthField[] = [];
  let base = 0;
  const add = (isCommand: boolean, isLast: boolean, value: Buffer) => {
    const b = Buffer.alloc(12 + value.length);
    b.writeUInt8(PDU.PDATA, 0);
    b.writeUInt32BE(6 + value.length, 2);
    b.writeUInt32BE(2 + value.length, 6);
    b.writeUInt8(pcId, 10);
    b.writeUInt8((isCommand ? 1 : 0) | (isLast ? 2 : 0), 11);
    value.copy(b, 12);
    lengths.push({ offset: base + 2, size: 4 }, { offset: base + 6, size: 4 });
    pdus.push(b);
    base += b.length;
  };
  add(true, true, command);
  for (let off = 0; off < dataset.length; off += fragment)
    add(false, off + fragment >= dataset.length, dataset.subarray(off, off + fragment));
  return { bytes: Buffer.concat(pdus), lengths };
}

const RELEASE_RQ = Buffer.from([PDU.RELEASE_RQ, 0, 0, 0, 0, 4, 0, 0, 0, 0]);

/** Whether every PDU in `bytes` is complete (else the receiver legitimately waits for more). */
function framingComplete(bytes: Buffer): boolean {
  let pos = 0;
  while (pos + 6 <= bytes.length) pos += 6 + bytes.readUInt32BE(pos + 2);
  return pos === bytes.length;
}

/** Offsets of the PDUs in `bytes` as framed by their lengths. */
function pduOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let pos = 0; pos + 6 <= bytes.length; pos += 6 + bytes.readUInt32BE(pos + 2)) offsets.push(pos);
  return offsets;
}

function pduTypes(bytes: Buffer): number[] {
  return pduOffsets(bytes).map((o) => bytes[o]!);
}

/** Whether the A-RELEASE-RQ at the end of `bytes` is framed as a PDU of its own (not swallowed). */
function releaseFramed(bytes: Buffer): boolean {
  return framingComplete(bytes) && pduOffsets(bytes).at(-1) === bytes.length - RELEASE_RQ.length;
}

// ---------------------------------------------------------------- a raw peer that records everything

interface Reply {
  type: number;
  pdu: Buffer;
}

class Probe {
  readonly replies: Reply[] = [];
  closedAt?: number;
  private buf = Buffer.alloc(0);
  private listeners: Array<() => void> = [];
  private constructor(readonly socket: net.Socket) {}

  static connect(port: number): Promise<Probe> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
      const probe = new Probe(socket);
      socket.once("connect", () => resolve(probe));
      socket.once("error", reject);
      socket.on("error", () => {});
      socket.on("data", (d: Buffer) => {
        probe.buf = Buffer.concat([probe.buf, d]);
        while (probe.buf.length >= 6 && probe.buf.length >= 6 + probe.buf.readUInt32BE(2)) {
          const pdu = probe.buf.subarray(0, 6 + probe.buf.readUInt32BE(2));
          probe.buf = probe.buf.subarray(pdu.length);
          probe.replies.push({ type: pdu[0]!, pdu });
          probe.notify();
        }
      });
      socket.on("close", () => {
        probe.closedAt = Date.now();
        probe.notify();
      });
    });
  }

  private notify(): void {
    for (const l of this.listeners.splice(0)) l();
  }

  /** Resolves when `cond` holds (checked on every PDU and on close) or after `ms` (then false). */
  until(cond: () => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(cond()), ms);
      const check = () => {
        if (cond()) {
          clearTimeout(timer);
          resolve(true);
        } else this.listeners.push(check);
      };
      check();
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }
}

/** Association-ended events logged so far. */
function associationEvents(rx: TestReceiver): Array<Record<string, unknown>> {
  return rx.logs.filter((l) => l.event === "association");
}

const RESULTS = ["rejected", "aborted", "error", "released", "closed"];

// ---------------------------------------------------------------- tests

describe("receiver under hostile input", () => {
  let rx: TestReceiver;
  let genDir: string;
  let small: GeneratedStudy;

  beforeAll(async () => {
    rx = await startTestReceiver({ receiver: { artimSeconds: ARTIM_S, maxPduLength: MAX_PDU } });
    genDir = tempDir("hostile");
    small = generateStudy({
      outDir: path.join(genDir, "small"),
      seed: "hostile-small",
      series: 2,
      instancesPerSeries: 2,
      fileSize: 2048,
    });
  });
  afterAll(async () => {
    await rx?.close();
    fs.rmSync(genDir, { recursive: true, force: true });
  });

  /** echoscu succeeds; returns once the receiver has ended that association too (echoscu exits first). */
  async function echoscuOk(): Promise<void> {
    const before = associationEvents(rx).length;
    const r = await run("echoscu", ["-to", "5", "-aec", "FIONA", "127.0.0.1", String(rx.handle.port)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await waitFor(() => associationEvents(rx).length > before && rx.handle.activeAssociations() === 0, 3000);
  }

  it("rejects 129 presentation contexts (permanent) and accepts 128; dcmtk peers are served after", async () => {
    const syntaxes = [VERIFICATION, MR, CT];
    const contexts = (n: number) =>
      // Only 128 odd ids fit in a byte: the 129th reuses id 1 (as a counting SCU would wrap around).
      Array.from({ length: n }, (_, i) => ({
        id: (2 * i + 1) & 0xff,
        abstractSyntax: syntaxes[i % 3]!,
        transferSyntaxes: [EXPLICIT_LE, IMPLICIT_LE],
      }));

    const tooMany = await RawScu.connect("127.0.0.1", rx.handle.port);
    const rj = await tooMany.associate("MANYPCS", "FIONA", contexts(129));
    expect(rj.accepted).toBe(false);
    expect(rj.reject?.result).toBe(1);
    await waitFor(() => tooMany.isClosed, (ARTIM_S + 2) * 1000); // the receiver closes, we do not
    tooMany.destroy();
    // The first association of this receiver: one event, "rejected".
    await waitFor(() => associationEvents(rx).length > 0);
    expect(associationEvents(rx)).toMatchObject([{ result: "rejected" }]);

    await echoscuOk();
    const stored = await storescu(rx.handle.port, small.files);
    expect(stored.code, stored.stderr).toBe(0);
    for (const [i, sop] of small.sopInstanceUids.entries())
      expect(
        fs.existsSync(path.join(rx.archive, `scp_${small.studyInstanceUid}`, `MR.${sop}`)),
        small.files[i],
      ).toBe(true);

    const max = await RawScu.connect("127.0.0.1", rx.handle.port);
    const ac = await max.associate("MAXPCS", "FIONA", contexts(128));
    expect(ac.accepted).toBe(true);
    expect(ac.contexts.size).toBe(128);
    expect((await max.echo(1))?.status).toBe(0);
    await max.release();
    await waitFor(() => rx.handle.activeAssociations() === 0);
  });

  // What the peer sends; `associateFirst` does a valid association before it.
  interface Case {
    name: string;
    bytes: () => Buffer;
    associateFirst?: boolean;
    /** Half-close after writing (the peer gives up). */
    end?: boolean;
    /** "reject": A-ASSOCIATE-RJ result 1; "abort": A-ABORT; "refused": RJ, A-ABORT or a plain close. */
    expect: "reject" | "abort" | "refused";
    /** The answer must come before ARTIM could have fired (the receiver decided on the header). */
    fast?: boolean;
  }
  const pcs = (...ids: number[]) =>
    ids.map((id) => ({ id, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] }));
  const withLength = (b: Buffer, offset: number, value: number, size: 2 | 4 = 2) => {
    const c = Buffer.from(b);
    if (size === 2) c.writeUInt16BE(value, offset);
    else c.writeUInt32BE(value, offset);
    return c;
  };
  const cases: Case[] = [
    {
      name: "an item length past the end of the PDU",
      // The application context item (first after the 68-byte fixed part) claims 0x4000 bytes.
      bytes: () => withLength(associateRq().bytes, 6 + 68 + 2, 0x4000),
      expect: "abort",
    },
    {
      name: "a PDU length past the end of the data, then the peer closes",
      bytes: () => withLength(associateRq().bytes, 2, associateRq().bytes.length + 500, 4),
      end: true,
      expect: "refused",
    },
    {
      name: "unknown PDU type 0x09",
      bytes: () => Buffer.from([0x09, 0, 0, 0, 0, 4, 1, 2, 3, 4]),
      expect: "abort",
    },
    {
      name: "a declared A-ASSOCIATE-RQ length of 10 MB",
      bytes: () => withLength(associateRq().bytes, 2, 10 * 1024 * 1024, 4),
      expect: "abort",
      fast: true,
    },
    {
      name: "a truncated fixed part (20 of 68 bytes)",
      bytes: () => withLength(associateRq().bytes.subarray(0, 26), 2, 20, 4),
      expect: "abort",
    },
    {
      name: "an even presentation context id",
      bytes: () => associateRq({ contexts: pcs(1, 4) }).bytes,
      expect: "reject",
    },
    {
      name: "duplicate presentation context ids",
      bytes: () => associateRq({ contexts: pcs(1, 3, 3) }).bytes,
      expect: "reject",
    },
    {
      name: "no application context",
      bytes: () => associateRq({ appContext: false }).bytes,
      expect: "reject",
    },
    {
      name: "an empty (all spaces) called AE title",
      bytes: () => associateRq({ called: "" }).bytes,
      expect: "reject",
    },
    {
      name: "control characters in the calling AE title",
      bytes: () =>
        associateRq({ calling: Buffer.from("EVIL\x01\x1b[2J\x00\x00\x00\x00\x00\x00\x00", "latin1") }).bytes,
      expect: "reject",
    },
    // Zero presentation contexts: PS3.8 requires at least one; whether that is RJ or A-ABORT is open.
    {
      name: "zero presentation contexts",
      bytes: () => associateRq({ contexts: [] }).bytes,
      expect: "refused",
    },
    {
      name: "P-DATA-TF before any association",
      bytes: () => Buffer.from([PDU.PDATA, 0, 0, 0, 0, 10, 0, 0, 0, 6, 1, 3, 0, 0, 0, 0]),
      expect: "abort",
    },
    {
      name: "a second A-ASSOCIATE-RQ",
      associateFirst: true,
      bytes: () => associateRq().bytes,
      expect: "abort",
    },
    {
      name: "a P-DATA-TF longer than the receiver's maximum PDU length",
      associateFirst: true,
      bytes: () => withLength(Buffer.from([PDU.PDATA, 0, 0, 0, 0, 0, 0, 0, 0, 6, 1, 3]), 2, MAX_PDU * 4, 4),
      expect: "abort",
      fast: true,
    },
  ];

  it.each(cases)("refuses $name, logs one association event, and keeps serving", async (c) => {
    const before = associationEvents(rx).length;
    const probe = await Probe.connect(rx.handle.port);
    if (c.associateFirst) {
      probe.write(associateRq().bytes);
      expect(await probe.until(() => probe.replies.length > 0, 3000)).toBe(true);
      expect(probe.replies[0]!.type).toBe(PDU.AC);
    }
    const seen = probe.replies.length;
    const t0 = Date.now();
    probe.write(c.bytes());
    if (c.end) probe.socket.end();
    // The receiver answers (or not) and closes the connection itself, within ARTIM and some slack.
    expect(
      await probe.until(() => probe.closed, (ARTIM_S + 1.5) * 1000),
      "connection closed by the receiver",
    ).toBe(true);
    const answer = probe.replies.slice(seen);
    expect(
      answer.every((r) => r.type !== PDU.AC),
      "no association accepted",
    ).toBe(true);
    if (c.expect === "reject") {
      expect(answer.map((r) => r.type)).toEqual([PDU.RJ]);
      expect(answer[0]!.pdu[7], "A-ASSOCIATE-RJ result: rejected-permanent").toBe(1);
    } else if (c.expect === "abort") {
      expect(answer.map((r) => r.type)).toEqual([PDU.ABORT]);
    } else {
      expect(answer.length).toBeLessThanOrEqual(1);
      if (answer.length === 1) expect([PDU.RJ, PDU.ABORT]).toContain(answer[0]!.type);
    }
    if (c.fast)
      expect(probe.closedAt! - t0, "decided on the header, not by ARTIM").toBeLessThan(ARTIM_S * 1000 * 0.8);

    await waitFor(() => associationEvents(rx).length > before, 3000);
    await new Promise((r) => setTimeout(r, 50));
    const events = associationEvents(rx).slice(before);
    expect(events, "exactly one association event").toHaveLength(1);
    expect(RESULTS).toContain(events[0]!.result);
    if (c.expect === "reject") expect(events[0]!.result).toBe("rejected");
    if (c.expect === "abort") expect(["aborted", "error"]).toContain(events[0]!.result);
    await echoscuOk();
    expect(rx.handle.activeAssociations()).toBe(0);
  });

  // ---------------------------------------------------------------- fuzz

  const SEED = 0x5eed1234;
  const RQ_CASES = 160;
  const PDATA_CASES = 160;
  const CONCURRENCY = 24;

  function mulberry32(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** One mutation of `b`: bit flips, a byte change, truncation, a length field change, or a splice. */
  function mutate(rng: () => number, b: Built): { bytes: Buffer; how: string } {
    const int = (n: number) => Math.floor(rng() * n);
    const out = Buffer.from(b.bytes);
    switch (int(5)) {
      case 0: {
        const flips = 1 + int(3);
        const at: number[] = [];
        for (let i = 0; i < flips; i++) {
          const pos = int(out.length);
          out[pos] = out[pos]! ^ (1 << int(8));
          at.push(pos);
        }
        return { bytes: out, how: `bit flips at ${at.join(",")}` };
      }
      case 1: {
        const pos = int(out.length);
        out[pos] = int(256);
        return { bytes: out, how: `byte ${pos} = ${out[pos]}` };
      }
      case 2: {
        const len = int(out.length);
        return { bytes: out.subarray(0, len), how: `truncated to ${len}` };
      }
      case 3: {
        const f = b.lengths[int(b.lengths.length)]!;
        const old = f.size === 2 ? out.readUInt16BE(f.offset) : out.readUInt32BE(f.offset);
        const max = f.size === 2 ? 0xffff : 0xffffffff;
        const choices = [0, old - 1, old + 1, old * 2, Math.floor(old / 2), max, int(max)];
        const v = Math.max(0, Math.min(max, choices[int(choices.length)]!));
        if (f.size === 2) out.writeUInt16BE(v, f.offset);
        else out.writeUInt32BE(v, f.offset);
        return { bytes: out, how: `length at ${f.offset} ${old} -> ${v}` };
      }
      default: {
        const from = int(out.length);
        const len = 1 + int(Math.min(64, out.length - from));
        return int(2) === 0
          ? {
              bytes: Buffer.concat([out.subarray(0, from), out.subarray(from + len)]),
              how: `deleted ${len} at ${from}`,
            }
          : {
              bytes: Buffer.concat([out.subarray(0, from + len), out.subarray(from)]),
              how: `duplicated ${len} at ${from}`,
            };
      }
    }
  }

  /** Run `jobs` with at most `limit` in flight. */
  async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
    const results: T[] = new Array(jobs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: limit }, async () => {
        while (next < jobs.length) {
          const i = next++;
          results[i] = await jobs[i]!();
        }
      }),
    );
    return results;
  }

  interface FuzzOutcome {
    label: string;
    closedInTime: boolean;
    /** Status of each C-STORE-RSP received. */
    storeStatuses: number[];
    /** PDU types the receiver sent. */
    replies: number[];
    /** Everything written after the A-ASSOCIATE-AC: the mutated P-DATA-TF, then A-RELEASE-RQ. */
    sent?: Buffer;
    /** Complete PDUs, none of them an A-ABORT of ours: the receiver has to answer something. */
    mustAnswer: boolean;
  }

  /**
   * The dataset of the first complete C-STORE message in a P-DATA-TF stream as PS3.8 frames it: what a
   * receiver may archive. PDVs count once their own bytes arrived (a streaming receiver handles them
   * before the rest of their PDU), as long as they fit the PDU and the PDU header is acceptable.
   */
  function deliveredDataset(stream: Buffer): Buffer | undefined {
    const parts: Buffer[] = [];
    let commandDone = false;
    for (let pos = 0; pos + 6 <= stream.length;) {
      const length = stream.readUInt32BE(pos + 2);
      const end = pos + 6 + length;
      if (stream[pos] !== PDU.PDATA || length > MAX_PDU) return undefined;
      for (let q = pos + 6; q < end;) {
        if (q + 6 > end || q + 6 > stream.length) return undefined;
        const next = q + 4 + stream.readUInt32BE(q);
        if (next > end || next < q + 6 || next > stream.length) return undefined;
        const control = stream[q + 5]!;
        if ((control & 1) === 1) commandDone ||= (control & 2) !== 0;
        else if (commandDone) {
          parts.push(stream.subarray(q + 6, next));
          if ((control & 2) !== 0) return Buffer.concat(parts);
        }
        q = next;
      }
      pos = end;
    }
    return undefined;
  }

  /** Status and command field of the DIMSE responses (one PDV each, as the receiver sends them). */
  function responses(replies: Reply[]): Array<{ commandField: number; status: number }> {
    const out: Array<{ commandField: number; status: number }> = [];
    for (const { type, pdu } of replies) {
      if (type !== PDU.PDATA || pdu.length < 12 || (pdu[11]! & 1) === 0) continue;
      const cmd = pdu.subarray(12, 6 + 4 + pdu.readUInt32BE(6));
      const r = { commandField: -1, status: -1 };
      for (let q = 0; q + 8 <= cmd.length; q += 8 + cmd.readUInt32LE(q + 4)) {
        const el = cmd.readUInt16LE(q + 2);
        if (el === 0x0100) r.commandField = cmd.readUInt16LE(q + 8);
        if (el === 0x0900) r.status = cmd.readUInt16LE(q + 8);
      }
      out.push(r);
    }
    return out;
  }

  it(`survives ${RQ_CASES + PDATA_CASES} mutated A-ASSOCIATE-RQ and P-DATA-TF streams (mulberry32 seed 0x${SEED.toString(16)})`, async () => {
    const rng = mulberry32(SEED);
    const study = generateStudy({
      outDir: path.join(genDir, "fuzz"),
      seed: "hostile-fuzz",
      series: 1,
      instancesPerSeries: PDATA_CASES,
      fileSize: 1024,
    });
    const gc = (() => {
      v8.setFlagsFromString("--expose-gc");
      return vm.runInNewContext("gc") as (() => void) | undefined;
    })();
    const memory = () => {
      if (gc) {
        gc();
        gc();
        return process.memoryUsage().heapUsed;
      }
      return process.memoryUsage().rss;
    };
    const archivedBefore = new Set(archivedFiles(rx.archive));
    const eventsBefore = associationEvents(rx).length;
    const mem0 = memory();
    const deadline = (ARTIM_S + 2) * 1000;

    // Phase 1: the A-ASSOCIATE-RQ itself. Case 0 is unmutated (the harness works).
    const rqJobs = Array.from({ length: RQ_CASES }, (_, i) => {
      const m = i === 0 ? { bytes: associateRq().bytes, how: "unmutated" } : mutate(rng, associateRq());
      return async (): Promise<FuzzOutcome> => {
        const probe = await Probe.connect(rx.handle.port);
        probe.write(m.bytes);
        // An accepted association (the mutation was harmless or hit a UID) is released properly.
        await probe.until(() => probe.closed || probe.replies.length > 0, deadline);
        if (probe.replies[0]?.type === PDU.AC) probe.write(RELEASE_RQ);
        const closedInTime = await probe.until(() => probe.closed, deadline);
        probe.socket.destroy();
        if (i === 0) expect(probe.replies.map((r) => r.type)).toEqual([PDU.AC, PDU.RELEASE_RP]);
        return {
          label: `rq case ${i}: ${m.how}`,
          closedInTime,
          storeStatuses: [],
          replies: probe.replies.map((r) => r.type),
          mustAnswer:
            m.bytes.length > 0 && framingComplete(m.bytes) && !pduTypes(m.bytes).includes(PDU.ABORT),
        };
      };
    });

    // Phase 2: after a valid association, one C-STORE (its own instance) whose PDUs are mutated,
    // then A-RELEASE-RQ. Case 0 is unmutated.
    const uids: string[] = [];
    const pdataJobs = study.files.map((file, i) => {
      const sop = study.sopInstanceUids[i]!;
      uids.push(sop);
      const { dataset } = splitPart10(fs.readFileSync(file));
      const cmd = commandSet({
        commandField: 0x0001,
        messageId: 1,
        sopClassUid: MR,
        sopInstanceUid: sop,
        hasDataset: true,
      });
      const stream = pdataStream(3, cmd, dataset);
      const m = i === 0 ? { bytes: stream.bytes, how: "unmutated" } : mutate(rng, stream);
      return async (): Promise<FuzzOutcome> => {
        const probe = await Probe.connect(rx.handle.port);
        probe.write(associateRq().bytes);
        await probe.until(() => probe.closed || probe.replies.length > 0, deadline);
        expect(probe.replies[0]?.type, "valid association").toBe(PDU.AC);
        const bytes = Buffer.concat([m.bytes, RELEASE_RQ]);
        probe.write(bytes);
        // When our A-RELEASE-RQ ended up inside another PDU (or the stream inside a PDU), the receiver
        // legitimately waits for more: give up (FIN) as a peer would.
        if (!releaseFramed(bytes)) probe.socket.end();
        const closedInTime = await probe.until(() => probe.closed, deadline);
        probe.socket.destroy();
        const storeStatuses = responses(probe.replies)
          .filter((r) => r.commandField === 0x8001)
          .map((r) => r.status);
        if (i === 0) expect(storeStatuses).toEqual([0]);
        return {
          label: `pdata case ${i} (${sop}): ${m.how}`,
          closedInTime,
          storeStatuses,
          replies: probe.replies.map((r) => r.type),
          sent: bytes,
          // After the A-ASSOCIATE-AC: a response, an A-RELEASE-RP or an A-ABORT.
          mustAnswer: releaseFramed(bytes) && !pduTypes(bytes).includes(PDU.ABORT),
        };
      };
    });

    const t0 = Date.now();
    const outcomes = await pool<FuzzOutcome>([...rqJobs, ...pdataJobs], CONCURRENCY);
    const elapsed = Date.now() - t0;

    const late = outcomes.filter((o) => !o.closedInTime).map((o) => o.label);
    expect(late, "connections the receiver did not close within ARTIM + 2 s").toEqual([]);
    const unanswered = outcomes
      .filter((o) => o.mustAnswer && o.replies.length < (o.sent ? 2 : 1))
      .map((o) => o.label);
    expect(unanswered, "complete PDUs closed without any answer (PS3.8: RJ, AC or A-ABORT)").toEqual([]);
    await waitFor(() => rx.handle.activeAssociations() === 0, 5000);
    await echoscuOk();

    // One association event per fuzz connection (the echoscu above adds one more).
    await waitFor(() => associationEvents(rx).length >= eventsBefore + outcomes.length + 1, 5000);
    await new Promise((r) => setTimeout(r, 100));
    const events = associationEvents(rx).slice(eventsBefore);
    const ids = events.map((e) => e.association);
    expect(
      events.filter((e, i) => ids.indexOf(e.association) !== i),
      "association ids logged twice",
    ).toEqual([]);
    expect(events).toHaveLength(outcomes.length + 1);
    for (const e of events) expect(RESULTS).toContain(e.result);

    // Every instance answered with Success is archived. Anything else archived must be exactly the
    // dataset of a complete C-STORE in what we sent, whose response was cut off because the garbage
    // right after it aborted the association (file names end with the SOP Instance UID).
    const pdata = outcomes.slice(RQ_CASES);
    const archived = new Map(
      archivedFiles(rx.archive)
        .filter((f) => !archivedBefore.has(f))
        .map((f) => [path.basename(f).slice(path.basename(f).indexOf(".") + 1), f]),
    );
    pdata.forEach((o, i) => {
      if (o.storeStatuses.includes(0))
        expect(archived.has(uids[i]!), `${o.label}: Success, archived`).toBe(true);
    });
    const unexplained: string[] = [];
    for (const [uid, file] of archived) {
      const o = pdata[uids.indexOf(uid)];
      expect(o, `archived ${file} is one of ours`).toBeDefined();
      if (o!.storeStatuses.includes(0)) continue;
      const delivered = deliveredDataset(o!.sent!);
      const ok =
        delivered !== undefined &&
        o!.replies.includes(PDU.ABORT) &&
        Buffer.compare(splitPart10(fs.readFileSync(file)).dataset, delivered) === 0;
      if (!ok) unexplained.push(`${o!.label} (replies ${o!.replies.join(",")})`);
    }
    expect(unexplained, "archived without a Success response").toEqual([]);
    expect(fs.readdirSync(path.join(rx.archive, ".tmp"))).toEqual([]);

    const grown = memory() - mem0;
    expect(grown, `${gc ? "heap" : "rss"} growth in bytes`).toBeLessThan(64 * 1024 * 1024);
    expect(elapsed).toBeLessThan(30_000);
  }, 60_000);
});
