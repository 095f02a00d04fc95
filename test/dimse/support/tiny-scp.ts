/**
 * A deliberately small C-STORE SCP for tests of the SCU's error paths: written from PS3.8 without the
 * SCU's own code, it can reject associations, answer any status, abort, stay silent, or advertise a
 * small maximum PDU, and it records every PDU and message it receives.
 */
import net from "node:net";

export interface ReceivedMessage {
  associationIndex: number;
  contextId: number;
  messageId: number;
  sopClassUid: string;
  sopInstanceUid: string;
  /** Raw command set bytes (implicit VR LE). */
  command: Buffer;
  /** Command elements by element number (group 0000). */
  elements: Map<number, Buffer>;
  dataset: Buffer;
}

export interface ProposedContextSeen {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export type AssociateDecision =
  | { reject: { result: number; source: number; reason: number } }
  | { accept?: (pc: ProposedContextSeen) => number /* PC result, 0 = accept the first TS */ }
  | "abort"
  | "silent";

export type StoreDecision = number | "abort" | "silent" | "close";

export interface TinyScpOptions {
  onAssociate?: (info: {
    calledAe: string;
    callingAe: string;
    contexts: ProposedContextSeen[];
  }) => AssociateDecision;
  /** Status for each message (default 0x0000). */
  onStore?: (message: ReceivedMessage, index: number) => StoreDecision;
  /** Max PDU length we advertise (default 16384). */
  maxPduLength?: number;
  errorComment?: string;
}

export interface TinyScp {
  port: number;
  associations: number;
  releases: number;
  messages: ReceivedMessage[];
  /** PDU body lengths of every P-DATA-TF received. */
  pDataLengths: number[];
  /** PDV data lengths of dataset fragments. */
  fragmentLengths: number[];
  /** Highest number of messages in flight (command received, response not yet sent). */
  maxOutstanding: number;
  /** Maximum PDU length the SCU proposed in its A-ASSOCIATE-RQ. */
  proposedMaxPdu: number[];
  implementationClassUids: string[];
  /** Protocol problems seen (a message on a context that was not accepted). */
  errors: string[];
  close(): Promise<void>;
}

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head[0] = type;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function item(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = type;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function text(b: Buffer): string {
  return b.toString("latin1").replace(/[\0 ]+$/, "");
}

function items(b: Buffer, from: number, to: number): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  for (let at = from; at + 4 <= to;) {
    const length = b.readUInt16BE(at + 2);
    out.push([b[at]!, b.subarray(at + 4, at + 4 + length)]);
    at += 4 + length;
  }
  return out;
}

function commandElement(element: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0, 0);
  head.writeUInt16LE(element, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

function us(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return b;
}

function uid(s: string): Buffer {
  const b = Buffer.from(s, "latin1");
  return b.length % 2 ? Buffer.concat([b, Buffer.from([0])]) : b;
}

export async function startTinyScp(opts: TinyScpOptions = {}): Promise<TinyScp> {
  const maxPdu = opts.maxPduLength ?? 16384;
  const sockets = new Set<net.Socket>();
  const scp: TinyScp = {
    port: 0,
    associations: 0,
    releases: 0,
    messages: [],
    pDataLengths: [],
    fragmentLengths: [],
    maxOutstanding: 0,
    proposedMaxPdu: [],
    implementationClassUids: [],
    errors: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let buffer = Buffer.alloc(0);
    let associationIndex = -1;
    const acceptedTs = new Map<number, string>();
    let command: Buffer[] = [];
    let dataset: Buffer[] = [];
    let current: Omit<ReceivedMessage, "dataset"> | undefined;
    let outstanding = 0;

    const respond = (msg: ReceivedMessage, status: number): void => {
      const elements = [
        commandElement(0x0002, uid(msg.sopClassUid)),
        commandElement(0x0100, us(0x8001)),
        commandElement(0x0120, us(msg.messageId)),
        commandElement(0x0800, us(0x0101)),
        commandElement(0x0900, us(status)),
      ];
      if (opts.errorComment && status !== 0) {
        const c = Buffer.from(opts.errorComment, "latin1");
        elements.push(commandElement(0x0902, c.length % 2 ? Buffer.concat([c, Buffer.from(" ")]) : c));
      }
      elements.push(commandElement(0x1000, uid(msg.sopInstanceUid)));
      const body = Buffer.concat(elements);
      const groupLength = Buffer.alloc(4);
      groupLength.writeUInt32LE(body.length, 0);
      const set = Buffer.concat([commandElement(0x0000, groupLength), body]);
      const pdv = Buffer.alloc(6);
      pdv.writeUInt32BE(set.length + 2, 0);
      pdv[4] = msg.contextId;
      pdv[5] = 0x03;
      outstanding--;
      socket.write(pdu(0x04, Buffer.concat([pdv, set])));
    };

    const onPdu = (p: Buffer): void => {
      const type = p[0];
      if (type === 0x01) {
        associationIndex = scp.associations++;
        const calledAe = text(p.subarray(10, 26));
        const callingAe = text(p.subarray(26, 42));
        const contexts: ProposedContextSeen[] = [];
        for (const [t, body] of items(p, 74, p.length)) {
          if (t === 0x20) {
            const pc: ProposedContextSeen = { id: body[0]!, abstractSyntax: "", transferSyntaxes: [] };
            for (const [st, sb] of items(body, 4, body.length)) {
              if (st === 0x30) pc.abstractSyntax = text(sb);
              if (st === 0x40) pc.transferSyntaxes.push(text(sb));
            }
            contexts.push(pc);
          } else if (t === 0x50) {
            for (const [st, sb] of items(body, 0, body.length)) {
              if (st === 0x51) scp.proposedMaxPdu.push(sb.readUInt32BE(0));
              if (st === 0x52) scp.implementationClassUids.push(text(sb));
            }
          }
        }
        const decision = opts.onAssociate?.({ calledAe, callingAe, contexts }) ?? {};
        if (decision === "silent") return;
        if (decision === "abort") {
          socket.end(pdu(0x07, Buffer.from([0, 0, 2, 0])));
          return;
        }
        if ("reject" in decision) {
          const { result, source, reason } = decision.reject;
          socket.end(pdu(0x03, Buffer.from([0, result, source, reason])));
          return;
        }
        const pcs = contexts.map((pc) => {
          const result = decision.accept ? decision.accept(pc) : 0;
          const ts = pc.transferSyntaxes[0] ?? "1.2.840.10008.1.2";
          if (result === 0) acceptedTs.set(pc.id, ts);
          return item(0x21, Buffer.concat([Buffer.from([pc.id, 0, result, 0]), item(0x40, Buffer.from(ts))]));
        });
        const max = Buffer.alloc(4);
        max.writeUInt32BE(maxPdu, 0);
        const user = item(
          0x50,
          Buffer.concat([
            item(0x51, max),
            item(0x52, Buffer.from("1.2.826.0.1.3680043.10.1")),
            item(0x55, Buffer.from("TINYSCP")),
          ]),
        );
        const fixed = Buffer.from(p.subarray(6, 74));
        socket.write(
          pdu(0x02, Buffer.concat([fixed, item(0x10, Buffer.from("1.2.840.10008.3.1.1.1")), ...pcs, user])),
        );
      } else if (type === 0x04) {
        scp.pDataLengths.push(p.length - 6);
        for (let at = 6; at + 6 <= p.length;) {
          const length = p.readUInt32BE(at);
          const contextId = p[at + 4]!;
          const control = p[at + 5]!;
          const data = p.subarray(at + 6, at + 4 + length);
          at += 4 + length;
          if (control & 1) {
            command.push(Buffer.from(data));
            if (control & 2) {
              const set = Buffer.concat(command);
              command = [];
              const elements = new Map<number, Buffer>();
              for (let i = 0; i + 8 <= set.length;) {
                const element = set.readUInt16LE(i + 2);
                const len = set.readUInt32LE(i + 4);
                elements.set(element, set.subarray(i + 8, i + 8 + len));
                i += 8 + len;
              }
              current = {
                associationIndex,
                contextId,
                messageId: elements.get(0x0110)!.readUInt16LE(0),
                sopClassUid: text(elements.get(0x0002)!),
                sopInstanceUid: text(elements.get(0x1000)!),
                command: set,
                elements,
              };
              outstanding++;
              scp.maxOutstanding = Math.max(scp.maxOutstanding, outstanding);
            }
          } else {
            scp.fragmentLengths.push(data.length);
            dataset.push(Buffer.from(data));
            if (control & 2 && current) {
              const msg: ReceivedMessage = { ...current, dataset: Buffer.concat(dataset) };
              dataset = [];
              current = undefined;
              if (!acceptedTs.has(msg.contextId))
                scp.errors.push(`message on context ${msg.contextId}, not accepted`);
              scp.messages.push(msg);
              const decision = opts.onStore?.(msg, scp.messages.length - 1) ?? 0;
              if (decision === "silent") continue;
              if (decision === "abort") {
                socket.end(pdu(0x07, Buffer.from([0, 0, 0, 0])));
                return;
              }
              if (decision === "close") {
                socket.destroy();
                return;
              }
              respond(msg, decision);
            }
          }
        }
      } else if (type === 0x05) {
        scp.releases++;
        socket.end(pdu(0x06, Buffer.alloc(4)));
      } else if (type === 0x07) {
        socket.destroy();
      }
    };

    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 6) {
        const length = buffer.readUInt32BE(2);
        if (buffer.length < 6 + length) break;
        const p = buffer.subarray(0, 6 + length);
        buffer = buffer.subarray(6 + length);
        onPdu(p);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  scp.port = (server.address() as net.AddressInfo).port;
  return scp;
}
