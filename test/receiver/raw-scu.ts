/**
 * A minimal DICOM SCU for tests: sends exactly the bytes it is given (dcmtk's storescu re-encodes
 * datasets and refuses garbage; dcmjs-dimse's client re-encodes through dcmjs). Association,
 * C-ECHO, C-STORE with arbitrary dataset bytes, release and abort; no validation of anything.
 */
import net from "node:net";

export interface ProposedContext {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface AssociateResult {
  accepted: boolean;
  /** Accepted presentation contexts: id -> transfer syntax. */
  contexts: Map<number, string>;
  /** Set when the association was rejected (A-ASSOCIATE-RJ). */
  reject?: { result: number; source: number; reason: number };
  /** The SCP's maximum PDU length (what we may send). */
  maxPdu: number;
}

export interface DimseResult {
  status: number;
  errorComment?: string;
}

function aeField(ae: string): Buffer {
  const b = Buffer.alloc(16, 0x20);
  b.write(ae.slice(0, 16), 0, "latin1");
  return b;
}

function item(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt8(type, 0);
  h.writeUInt16BE(body.length, 2);
  return Buffer.concat([h, body]);
}

function pdu(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt8(type, 0);
  h.writeUInt32BE(body.length, 2);
  return Buffer.concat([h, body]);
}

function uid(u: string): Buffer {
  return Buffer.from(u, "latin1");
}

function evenUid(u: string): Buffer {
  const b = Buffer.from(u, "latin1");
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([0])]);
}

function implicitElement(element: number, value: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0x0000, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(value.length, 4);
  return Buffer.concat([h, value]);
}

function us(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return b;
}

/** Encode a request command set (implicit VR LE) with group length. */
export function commandSet(fields: {
  commandField: number;
  messageId: number;
  sopClassUid: string;
  sopInstanceUid?: string;
  hasDataset: boolean;
}): Buffer {
  const els = [
    implicitElement(0x0002, evenUid(fields.sopClassUid)),
    implicitElement(0x0100, us(fields.commandField)),
  ];
  els.push(implicitElement(0x0110, us(fields.messageId)));
  if (fields.commandField === 0x0001) els.push(implicitElement(0x0700, us(0)));
  els.push(implicitElement(0x0800, us(fields.hasDataset ? 0x0000 : 0x0101)));
  if (fields.sopInstanceUid !== undefined) els.push(implicitElement(0x1000, evenUid(fields.sopInstanceUid)));
  const body = Buffer.concat(els);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(body.length, 0);
  return Buffer.concat([implicitElement(0x0000, gl), body]);
}

function pdv(pcId: number, isCommand: boolean, isLast: boolean, value: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt32BE(value.length + 2, 0);
  h.writeUInt8(pcId, 4);
  h.writeUInt8((isCommand ? 1 : 0) | (isLast ? 2 : 0), 5);
  return Buffer.concat([h, value]);
}

export class RawScu {
  private socket!: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiters: Array<(p: Buffer) => void> = [];
  private queue: Buffer[] = [];
  private closed = false;
  private messageId = 0;
  private commandParts: Buffer[] = [];
  maxPdu = 16384;

  static async connect(host: string, port: number): Promise<RawScu> {
    const scu = new RawScu();
    await new Promise<void>((resolve, reject) => {
      scu.socket = net.connect({ host, port, noDelay: true }, () => resolve());
      scu.socket.once("error", reject);
    });
    scu.socket.on("data", (d: Buffer) => scu.onData(d));
    scu.socket.on("close", () => {
      scu.closed = true;
      for (const w of scu.waiters.splice(0)) w(Buffer.alloc(0));
    });
    scu.socket.on("error", () => {});
    return scu;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onData(d: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, d]);
    while (this.buffered.length >= 6) {
      const len = this.buffered.readUInt32BE(2);
      if (this.buffered.length < 6 + len) break;
      const p = this.buffered.subarray(0, 6 + len);
      this.buffered = this.buffered.subarray(6 + len);
      const w = this.waiters.shift();
      if (w) w(p);
      else this.queue.push(p);
    }
  }

  /** Next PDU from the SCP; an empty buffer when the connection closed. */
  nextPdu(timeoutMs = 10_000): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(Buffer.alloc(0));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out waiting for a PDU")), timeoutMs);
      this.waiters.push((p) => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** One P-DATA-TF with one PDV. */
  sendPdv(pcId: number, isCommand: boolean, isLast: boolean, value: Buffer): void {
    this.write(pdu(0x04, pdv(pcId, isCommand, isLast, value)));
  }

  nextMessageId(): number {
    return ++this.messageId;
  }

  async associate(
    callingAe: string,
    calledAe: string,
    contexts: ProposedContext[],
  ): Promise<AssociateResult> {
    const fixed = Buffer.alloc(4);
    fixed.writeUInt16BE(1, 0);
    const items: Buffer[] = [item(0x10, uid("1.2.840.10008.3.1.1.1"))];
    for (const pc of contexts) {
      const head = Buffer.from([pc.id, 0, 0, 0]);
      const subs = [
        item(0x30, uid(pc.abstractSyntax)),
        ...pc.transferSyntaxes.map((ts) => item(0x40, uid(ts))),
      ];
      items.push(item(0x20, Buffer.concat([head, ...subs])));
    }
    const maxLen = Buffer.alloc(4);
    maxLen.writeUInt32BE(16384, 0);
    items.push(item(0x50, Buffer.concat([item(0x51, maxLen), item(0x52, uid("1.2.3.4.5.6.7"))])));
    this.write(
      pdu(0x01, Buffer.concat([fixed, aeField(calledAe), aeField(callingAe), Buffer.alloc(32), ...items])),
    );
    const reply = await this.nextPdu();
    const result: AssociateResult = { accepted: false, contexts: new Map(), maxPdu: 0 };
    if (reply[0] === 0x03) {
      result.reject = { result: reply[7] as number, source: reply[8] as number, reason: reply[9] as number };
      return result;
    }
    if (reply[0] !== 0x02) throw new Error(`unexpected PDU type ${reply[0]} in reply to A-ASSOCIATE-RQ`);
    result.accepted = true;
    let pos = 6 + 68;
    while (pos + 4 <= reply.length) {
      const type = reply[pos] as number;
      const len = reply.readUInt16BE(pos + 2);
      const body = reply.subarray(pos + 4, pos + 4 + len);
      if (type === 0x21 && body[2] === 0) {
        const tsLen = body.readUInt16BE(6);
        result.contexts.set(body[0] as number, body.toString("latin1", 8, 8 + tsLen).replace(/\0+$/, ""));
      } else if (type === 0x50) {
        let p = 0;
        while (p + 4 <= body.length) {
          const st = body[p] as number;
          const sl = body.readUInt16BE(p + 2);
          if (st === 0x51) result.maxPdu = body.readUInt32BE(p + 4);
          p += 4 + sl;
        }
      }
      pos += 4 + len;
    }
    this.maxPdu = result.maxPdu || 16384;
    return result;
  }

  /** Send a command (and optional dataset bytes, fragmented to fit the SCP's max PDU) and read the response. */
  async request(
    pcId: number,
    command: Buffer,
    dataset?: Buffer,
    opts: { fragmentSize?: number; expectResponse?: boolean } = {},
  ): Promise<DimseResult | undefined> {
    this.write(pdu(0x04, pdv(pcId, true, true, command)));
    if (dataset !== undefined) {
      const size = Math.max(1, Math.min(opts.fragmentSize ?? this.maxPdu - 12, this.maxPdu - 12));
      for (let off = 0; off < dataset.length || off === 0; off += size) {
        const part = dataset.subarray(off, off + size);
        this.write(pdu(0x04, pdv(pcId, false, off + size >= dataset.length, part)));
        if (dataset.length === 0) break;
      }
    }
    if (opts.expectResponse === false) return undefined;
    return this.readResponse();
  }

  async readResponse(timeoutMs = 10_000): Promise<DimseResult> {
    for (;;) {
      const p = await this.nextPdu(timeoutMs);
      if (p.length === 0) throw new Error("connection closed before the response");
      if (p[0] !== 0x04) throw new Error(`unexpected PDU type ${p[0]} while waiting for a response`);
      let pos = 6;
      let last = false;
      while (pos < p.length) {
        const len = p.readUInt32BE(pos);
        const control = p[pos + 5] as number;
        this.commandParts.push(p.subarray(pos + 6, pos + 4 + len));
        last = (control & 2) !== 0;
        pos += 4 + len;
      }
      if (!last) continue;
      const cmd = Buffer.concat(this.commandParts);
      this.commandParts = [];
      const out: DimseResult = { status: -1 };
      let q = 0;
      while (q + 8 <= cmd.length) {
        const el = cmd.readUInt16LE(q + 2);
        const len = cmd.readUInt32LE(q + 4);
        if (el === 0x0900) out.status = cmd.readUInt16LE(q + 8);
        if (el === 0x0902) out.errorComment = cmd.toString("latin1", q + 8, q + 8 + len).trim();
        q += 8 + len;
      }
      return out;
    }
  }

  echo(pcId: number): Promise<DimseResult | undefined> {
    return this.request(
      pcId,
      commandSet({
        commandField: 0x0030,
        messageId: ++this.messageId,
        sopClassUid: "1.2.840.10008.1.1",
        hasDataset: false,
      }),
    );
  }

  store(
    pcId: number,
    sopClassUid: string,
    sopInstanceUid: string,
    dataset: Buffer,
    opts: { fragmentSize?: number; expectResponse?: boolean } = {},
  ): Promise<DimseResult | undefined> {
    const cmd = commandSet({
      commandField: 0x0001,
      messageId: ++this.messageId,
      sopClassUid,
      sopInstanceUid,
      hasDataset: true,
    });
    return this.request(pcId, cmd, dataset, opts);
  }

  async release(): Promise<void> {
    this.write(pdu(0x05, Buffer.alloc(4)));
    const reply = await this.nextPdu();
    if (reply.length > 0 && reply[0] !== 0x06)
      throw new Error(`unexpected PDU type ${reply[0]} in reply to release`);
    this.socket.end();
  }

  abort(): void {
    this.write(pdu(0x07, Buffer.alloc(4)));
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The dataset part (after preamble and meta group) of a Part-10 file, and its transfer syntax. */
export function splitPart10(file: Buffer): { dataset: Buffer; transferSyntaxUid: string; metaEnd: number } {
  if (file.toString("latin1", 128, 132) !== "DICM") throw new Error("not a Part-10 file");
  const groupLength = file.readUInt32LE(140);
  const metaEnd = 144 + groupLength;
  let pos = 144;
  let ts = "";
  while (pos < metaEnd) {
    const el = file.readUInt16LE(pos + 2);
    const vr = file.toString("latin1", pos + 4, pos + 6);
    const long = vr === "OB" || vr === "OW" || vr === "UN" || vr === "SQ" || vr === "UT";
    const len = long ? file.readUInt32LE(pos + 8) : file.readUInt16LE(pos + 6);
    const value = pos + (long ? 12 : 8);
    if (el === 0x0010) ts = file.toString("latin1", value, value + len).replace(/[\0 ]+$/, "");
    pos = value + len;
  }
  return { dataset: file.subarray(metaEnd), transferSyntaxUid: ts, metaEnd };
}
