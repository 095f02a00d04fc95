import dicomParser from "dicom-parser";
import { describe, expect, it } from "vitest";
import { commandPdu, encodeCEchoRq, encodeResponse, parseCommand } from "../../src/dimse/command.js";
import {
  AssociateRejection,
  MAX_CONTEXTS,
  PduError,
  encodeAssociateAc,
  encodeAssociateRq,
  parseAssociateAc,
  parseAssociateRq,
  type ProposedContext,
} from "../../src/dimse/pdu.js";
import { PduStream, type PduSink } from "../../src/dimse/pdu-stream.js";

const MR = "1.2.840.10008.5.1.4.1.1.4";
const contexts = (n: number): ProposedContext[] =>
  Array.from({ length: n }, (_, i) => ({
    id: i * 2 + 1,
    abstractSyntax: MR,
    transferSyntaxes: ["1.2.840.10008.1.2"],
  }));
const rq = (over: Partial<Parameters<typeof encodeAssociateRq>[0]> = {}) =>
  encodeAssociateRq({
    calledAe: "FIONA",
    callingAe: "SCANNER",
    contexts: contexts(2),
    maxPduLength: 16384,
    implementationClassUid: "1.2.3.4",
    implementationVersionName: "TEST",
    ...over,
  });

describe("A-ASSOCIATE-RQ parsing", () => {
  it("reads what the requestor encoder writes", () => {
    const got = parseAssociateRq(rq());
    expect(got).toMatchObject({
      calledAe: "FIONA",
      callingAe: "SCANNER",
      maxPduLength: 16384,
      implementationClassUid: "1.2.3.4",
    });
    expect(got.contexts).toEqual(contexts(2));
  });

  it("accepts 128 presentation contexts and rejects 129 (A-ASSOCIATE-RJ permanent)", () => {
    expect(parseAssociateRq(rq({ contexts: contexts(MAX_CONTEXTS) })).contexts).toHaveLength(128);
    // 129 contexts cannot be proposed with odd ids; repeat one to make the 129th
    const many = [...contexts(128), { id: 1, abstractSyntax: MR, transferSyntaxes: ["1.2.840.10008.1.2"] }];
    const err = catchErr(() => parseAssociateRq(rq({ contexts: many })));
    expect(err).toBeInstanceOf(AssociateRejection);
    expect((err as AssociateRejection).reject.result).toBe(1);
  });

  it("rejects even or repeated ids, no contexts, bad AE titles and a foreign application context", () => {
    const even = rq({ contexts: [{ id: 2, abstractSyntax: MR, transferSyntaxes: ["1.2.840.10008.1.2"] }] });
    expect(catchErr(() => parseAssociateRq(even))).toBeInstanceOf(AssociateRejection);
    expect(catchErr(() => parseAssociateRq(rq({ contexts: [] })))).toBeInstanceOf(AssociateRejection);
    const blankAe = rq();
    blankAe.fill(0x20, 26, 42);
    expect((catchErr(() => parseAssociateRq(blankAe)) as AssociateRejection).reject.reason).toBe(3);
    const ctx = rq();
    ctx[74 + 4 + 4] = 0x39; // "1.2.840.10008.3.1.1.1" -> "1.2.8..." becomes "1.2.9..."
    expect((catchErr(() => parseAssociateRq(ctx)) as AssociateRejection).reject.reason).toBe(2);
  });

  it("aborts on lengths that do not fit (PduError)", () => {
    const r = rq();
    expect(catchErr(() => parseAssociateRq(r.subarray(0, 60)))).toBeInstanceOf(PduError);
    const cut = Buffer.from(r.subarray(0, r.length - 3));
    cut.writeUInt32BE(cut.length - 6, 2); // consistent PDU length, last item now overruns
    expect(catchErr(() => parseAssociateRq(cut))).toBeInstanceOf(PduError);
    const longItem = Buffer.from(r);
    longItem.writeUInt16BE(0xfff0, 74 + 2); // application context item claims 65520 bytes
    expect(catchErr(() => parseAssociateRq(longItem))).toBeInstanceOf(PduError);
  });

  it("encodes an A-ASSOCIATE-AC the requestor decoder reads", () => {
    const ac = encodeAssociateAc({
      calledAe: "FIONA",
      callingAe: "SCANNER",
      contexts: [
        { id: 1, result: 0, transferSyntax: "1.2.840.10008.1.2.1" },
        { id: 3, result: 3, transferSyntax: "1.2.840.10008.1.2" },
      ],
      maxPduLength: 262144,
      implementationClassUid: "1.2.3",
      implementationVersionName: "FIONA",
    });
    expect(parseAssociateAc(ac)).toEqual({
      contexts: [
        { id: 1, result: 0, transferSyntax: "1.2.840.10008.1.2.1" },
        { id: 3, result: 3, transferSyntax: "1.2.840.10008.1.2" },
      ],
      maxPduLength: 262144,
      implementationClassUid: "1.2.3",
      implementationVersionName: "FIONA",
    });
  });
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe("PduStream", () => {
  function collect() {
    const events: string[] = [];
    const data: Buffer[] = [];
    const sink: PduSink = {
      pdvBegin: (pc, cmd, last, len) =>
        events.push(`begin ${pc} ${cmd ? "cmd" : "data"} ${last ? "last" : "more"} ${len}`),
      pdvData: (b) => data.push(Buffer.from(b)),
      pdvEnd: () => events.push("end"),
      otherPdu: (p) => events.push(`other ${p[0]} ${p.length}`),
    };
    return { sink, events, data };
  }
  const pdv = (pc: number, control: number, value: Buffer) => {
    const h = Buffer.alloc(6);
    h.writeUInt32BE(value.length + 2, 0);
    h[4] = pc;
    h[5] = control;
    return Buffer.concat([h, value]);
  };
  const pdu = (type: number, body: Buffer) => {
    const h = Buffer.alloc(6);
    h[0] = type;
    h.writeUInt32BE(body.length, 2);
    return Buffer.concat([h, body]);
  };
  const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
  const stream = Buffer.concat([
    pdu(0x04, Buffer.concat([pdv(1, 3, Buffer.from("CMD!")), pdv(1, 0, payload.subarray(0, 100))])),
    pdu(0x04, pdv(1, 2, payload.subarray(100))),
    pdu(0x05, Buffer.alloc(4)),
  ]);

  it.each([1, 2, 5, 7, 64, 1000])("gives the same events for any chunking (chunk size %i)", (size) => {
    const { sink, events, data } = collect();
    const s = new PduStream(sink, 1 << 20, 1 << 20);
    for (let i = 0; i < stream.length; i += size) s.push(stream.subarray(i, i + size));
    expect(events).toEqual([
      "begin 1 cmd last 4",
      "end",
      "begin 1 data more 100",
      "end",
      "begin 1 data last 200",
      "end",
      "other 5 10",
    ]);
    expect(Buffer.concat(data)).toEqual(Buffer.concat([Buffer.from("CMD!"), payload]));
  });

  it("rejects unknown PDU types, oversized PDUs and PDV items that overrun their PDU", () => {
    const mk = () => new PduStream(collect().sink, 1000, 1000);
    expect(() => mk().push(Buffer.from([0x09, 0, 0, 0, 0, 0]))).toThrow(PduError);
    expect(() => mk().push(pdu(0x04, Buffer.alloc(2000)))).toThrow(PduError);
    expect(() => mk().push(pdu(0x04, Buffer.from([0, 0, 0, 50, 1, 3, 0, 0])))).toThrow(PduError);
  });
});

describe("command sets", () => {
  it("encodes a C-STORE response command set with an even-length, group-length-correct layout", () => {
    const p = commandPdu(
      7,
      encodeResponse({
        commandField: 0x8001,
        messageIdBeingRespondedTo: 42,
        affectedSopClassUid: "1.2.840.10008.5.1.4.1.1.4",
        affectedSopInstanceUid: "1.2.3",
        status: 0xc000,
        errorComment: "bad",
      }),
    );
    expect(p[0]).toBe(0x04);
    expect(p.readUInt32BE(2)).toBe(p.length - 6);
    expect(p.readUInt32BE(6)).toBe(p.length - 10);
    expect(p[10]).toBe(7);
    expect(p[11]).toBe(3);
    const cmd = p.subarray(12);
    expect(cmd.readUInt32LE(8)).toBe(cmd.length - 12);
    const ds = dicomParser.parseDicom(cmd, { TransferSyntaxUID: "1.2.840.10008.1.2" });
    expect(ds.uint16("x00000100")).toBe(0x8001);
    expect(ds.uint16("x00000120")).toBe(42);
    expect(ds.uint16("x00000900")).toBe(0xc000);
    expect(ds.string("x00000902")).toBe("bad");
    expect(ds.string("x00001000")).toBe("1.2.3");
    // (dicom-parser adds a synthetic 0002,0010 element for raw datasets)
    for (const [tag, el] of Object.entries(ds.elements))
      if (tag.startsWith("x0000")) expect(el.length % 2).toBe(0);
  });

  it("encodes a C-ECHO-RQ that parses back", () => {
    const c = parseCommand(encodeCEchoRq(9));
    expect(c.us(0x0100)).toBe(0x0030);
    expect(c.us(0x0110)).toBe(9);
    expect(c.us(0x0800)).toBe(0x0101);
    expect(c.text(0x0002)).toBe("1.2.840.10008.1.1");
  });
});
