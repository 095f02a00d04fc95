/**
 * The SCU's protocol behaviour and error paths against a tiny in-test SCP (test/dimse/support/tiny-scp.ts):
 * status classification, rejections, aborts, timeouts, PDU fragmentation, request queueing.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { IMPLEMENTATION_CLASS_UID } from "../../src/dicom/part10.js";
import {
  NOT_SENT,
  PermanentSendError,
  RetryableSendError,
  SendError,
  openAssociation,
  readPart10ForStore,
  sendFiles,
  type StoreDestination,
  type StoreRequest,
} from "../../src/dimse/index.js";
import { freePort } from "../support/env.js";
import { generateStudy, type GeneratedStudy } from "../support/generate.js";
import { startTinyScp, type TinyScp, type TinyScpOptions } from "./support/tiny-scp.js";

let work: string;
let study: GeneratedStudy;
let files: StoreRequest[];
const scps: TinyScp[] = [];

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "fiona-scu-"));
  study = generateStudy({
    outDir: path.join(work, "in"),
    seed: "scu",
    series: 1,
    instancesPerSeries: 6,
    fileSize: 40_000,
  });
  files = study.files.map(readPart10ForStore);
});

afterEach(async () => {
  await Promise.all(scps.splice(0).map((s) => s.close()));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function scp(opts: TinyScpOptions = {}): Promise<TinyScp> {
  const s = await startTinyScp(opts);
  scps.push(s);
  return s;
}

function dest(port: number, extra: Partial<StoreDestination> = {}): StoreDestination {
  return {
    host: "127.0.0.1",
    port,
    calledAe: "RESEARCH",
    callingAe: "FIONA_TEST",
    timeoutMs: 5000,
    ...extra,
  };
}

const contexts = () => [{ sopClassUid: study.sopClassUid, transferSyntaxUid: study.transferSyntaxUid }];

describe("C-STORE-RSP status classification", () => {
  const cases: Array<[number, "success" | "warning" | "failure", boolean]> = [
    [0x0000, "success", false],
    [0xb000, "warning", false],
    [0xb007, "warning", false],
    [0xb006, "warning", false],
    [0xa700, "failure", true],
    [0xa7ff, "failure", true],
    [0x0122, "failure", false],
    [0xa900, "failure", false],
    [0xa9ff, "failure", false],
    [0xc000, "failure", false],
    [0xcfff, "failure", false],
    [0x0211, "failure", false],
    [0x0212, "failure", false],
    [0x0110, "failure", false],
  ];

  test("every status over one association, classified as specified", async () => {
    const peer = await scp({ onStore: (_m, i) => cases[i]![0], errorComment: "peer says no" });
    const association = await openAssociation(dest(peer.port), contexts());
    for (const [status, kind, retryable] of cases) {
      const outcome = await association.store(files[0]!);
      expect(outcome.status).toBe(status);
      expect(outcome.kind).toBe(kind);
      expect(outcome.retryable).toBe(retryable);
      if (kind === "success") expect(outcome.reason).toBeUndefined();
      else expect(outcome.reason).toContain(`0x${status.toString(16).toUpperCase().padStart(4, "0")}`);
      if (status !== 0) expect(outcome.errorComment).toBe("peer says no");
    }
    await association.release();
    expect(association.closed).toBe(true);
    expect(peer.associations).toBe(1);
    expect(peer.releases).toBe(1);
    expect(peer.messages).toHaveLength(cases.length);
    expect(peer.errors).toEqual([]);
  });

  test("reasons name the meaning", async () => {
    const statuses = [0x0122, 0xa700, 0xa900, 0xc123];
    const peer = await scp({ onStore: (_m, i) => statuses[i]! });
    const association = await openAssociation(dest(peer.port), contexts());
    const reasons: string[] = [];
    for (let i = 0; i < statuses.length; i++) reasons.push((await association.store(files[0]!)).reason ?? "");
    await association.release();
    const from = ` (from RESEARCH@127.0.0.1:${peer.port})`;
    expect(reasons).toEqual([
      "0x0122 refused: SOP class not supported" + from,
      "0xA700 refused: out of resources" + from,
      "0xA900 error: data set does not match SOP class" + from,
      "0xC123 error: cannot understand" + from,
    ]);
  });
});

describe("protocol", () => {
  test("A-ASSOCIATE-RQ, command set and fragmentation up to the peer's max PDU", async () => {
    const peer = await scp({ maxPduLength: 4096 });
    const association = await openAssociation(dest(peer.port), contexts());
    expect(association.maxFragment).toBe(4090);
    expect(association.peerImplementation.versionName).toBe("TINYSCP");
    for (const file of files.slice(0, 3)) expect((await association.store(file)).kind).toBe("success");
    await association.release();

    expect(peer.implementationClassUids).toEqual([IMPLEMENTATION_CLASS_UID]);
    expect(peer.proposedMaxPdu).toEqual([65536]);
    expect(Math.max(...peer.pDataLengths)).toBeLessThanOrEqual(4096);
    expect(peer.fragmentLengths.every((n) => n % 2 === 0)).toBe(true);
    expect(peer.messages.map((m) => m.messageId)).toEqual([1, 2, 3]);
    for (const [i, m] of peer.messages.entries()) {
      expect(Buffer.compare(m.dataset, Buffer.from(files[i]!.dataset))).toBe(0);
      expect(m.sopClassUid).toBe(study.sopClassUid);
      expect(m.sopInstanceUid).toBe(study.sopInstanceUids[i]);
      expect(m.elements.get(0x0100)!.readUInt16LE(0)).toBe(0x0001); // C-STORE-RQ
      expect(m.elements.get(0x0700)!.readUInt16LE(0)).toBe(0x0000); // medium priority
      expect(m.elements.get(0x0800)!.readUInt16LE(0)).toBe(0x0000); // dataset present
      expect(m.elements.get(0x0000)!.readUInt32LE(0)).toBe(m.command.length - 12); // group length
      expect(m.elements.has(0x1030)).toBe(false);
    }
  });

  test("MoveOriginator AE title and message ID", async () => {
    const peer = await scp();
    const association = await openAssociation(dest(peer.port), contexts());
    await association.store({ ...files[0]!, moveOriginator: { aeTitle: "MOVER", messageId: 7 } });
    await association.release();
    const m = peer.messages[0]!;
    expect(m.elements.get(0x1030)!.toString("latin1")).toBe("MOVER ");
    expect(m.elements.get(0x1031)!.readUInt16LE(0)).toBe(7);
  });

  test("concurrent store calls are queued: one outstanding request at a time", async () => {
    const peer = await scp();
    const association = await openAssociation(dest(peer.port), contexts());
    const outcomes = await Promise.all(files.map((f) => association.store(f)));
    const released = association.release();
    await released;
    expect(outcomes.every((o) => o.kind === "success")).toBe(true);
    expect(peer.maxOutstanding).toBe(1);
    expect(peer.messages.map((m) => m.sopInstanceUid)).toEqual(study.sopInstanceUids);
    await expect(association.store(files[0]!)).rejects.toThrow(/association is closed/);
  });

  test("a presentation context the peer rejects gives a permanent NOT_SENT failure", async () => {
    const peer = await scp({ onAssociate: () => ({ accept: () => 3 }) });
    const association = await openAssociation(dest(peer.port), contexts());
    expect(association.contexts[0]!.accepted).toBe(false);
    const outcome = await association.store(files[0]!);
    expect(outcome).toMatchObject({ status: NOT_SENT, kind: "failure", retryable: false });
    expect(outcome.reason).toMatch(/abstract syntax \(SOP class\) not supported/);
    const other = await association.store({ ...files[0]!, transferSyntaxUid: "1.2.840.10008.1.2.4.70" });
    expect(other.reason).toMatch(/no presentation context was proposed/);
    await association.release();
    expect(peer.messages).toHaveLength(0);
  });

  test("sendFiles without prefetching (files above prefetchLimitBytes) sends the same, in order", async () => {
    const peer = await scp();
    const report = await sendFiles(dest(peer.port), study.files, { prefetchLimitBytes: 0 });
    expect(report.succeeded).toBe(study.files.length);
    expect(peer.messages.map((m) => m.sopInstanceUid)).toEqual(study.sopInstanceUids);
    for (const [i, m] of peer.messages.entries())
      expect(m.dataset.equals(Buffer.from(files[i]!.dataset))).toBe(true);
  });

  test("sendFiles: unreadable and non-DICOM files are per-file failures, the rest is sent in order", async () => {
    const peer = await scp();
    const junk = path.join(work, "junk.dcm");
    writeFileSync(junk, Buffer.alloc(300, 1));
    const paths = [study.files[0]!, junk, path.join(work, "missing.dcm"), study.files[1]!];
    const report = await sendFiles(dest(peer.port), paths);
    expect(report.files.map((f) => f.path)).toEqual(paths);
    expect(report.files.map((f) => f.outcome.kind)).toEqual(["success", "failure", "failure", "success"]);
    expect(report.files[1]!.outcome.reason).toMatch(/not a Part-10 file/);
    expect(report.files[2]!.outcome.reason).toMatch(/ENOENT/);
    expect(report).toMatchObject({ succeeded: 2, failed: 2, retryable: 0, associations: 1 });
    expect(peer.associations).toBe(1);
  });
});

describe("association-level failures", () => {
  test("permanent rejection (called AE not recognized) -> PermanentSendError naming the destination", async () => {
    const peer = await scp({ onAssociate: () => ({ reject: { result: 1, source: 1, reason: 7 } }) });
    const err = await openAssociation(dest(peer.port), contexts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentSendError);
    expect((err as PermanentSendError).retryable).toBe(false);
    expect((err as Error).message).toBe(
      `C-STORE to RESEARCH@127.0.0.1:${peer.port}: association rejected (permanent, service-user: called AE title not recognized)`,
    );
    expect((err as PermanentSendError).reject).toEqual({ result: 1, source: 1, reason: 7 });

    const viaSend = await sendFiles(dest(peer.port), study.files).catch((e: unknown) => e);
    expect(viaSend).toBeInstanceOf(PermanentSendError);
    expect((viaSend as SendError).report?.files).toEqual([]);
  });

  test("transient rejection -> RetryableSendError", async () => {
    const peer = await scp({ onAssociate: () => ({ reject: { result: 2, source: 3, reason: 1 } }) });
    const err = await openAssociation(dest(peer.port), contexts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableSendError);
    expect((err as Error).message).toMatch(
      /transient, service-provider \(presentation\): temporary congestion/,
    );
  });

  test("A-ABORT instead of an answer to the association request -> RetryableSendError", async () => {
    const peer = await scp({ onAssociate: () => "abort" });
    await expect(openAssociation(dest(peer.port), contexts())).rejects.toThrow(RetryableSendError);
  });

  test("A-ABORT in the middle of a batch -> RetryableSendError with the partial report", async () => {
    const peer = await scp({ onStore: (_m, i) => (i === 1 ? "abort" : 0) });
    const err = await sendFiles(dest(peer.port), study.files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableSendError);
    expect((err as Error).message).toMatch(
      new RegExp(`^C-STORE to RESEARCH@127\\.0\\.0\\.1:${peer.port}: association aborted by the peer`),
    );
    const report = (err as SendError).report!;
    expect(report.files.map((f) => f.path)).toEqual([study.files[0]]);
    expect(report.succeeded).toBe(1);
  });

  test("connection closed without a response -> RetryableSendError", async () => {
    const peer = await scp({ onStore: () => "close" });
    const association = await openAssociation(dest(peer.port), contexts());
    await expect(association.store(files[0]!)).rejects.toThrow(/connection closed by the peer/);
    expect(association.closed).toBe(true);
    await association.release(); // a no-op now
  });

  test("no C-STORE-RSP within timeoutMs -> RetryableSendError, queued requests fail too", async () => {
    const peer = await scp({ onStore: () => "silent" });
    const association = await openAssociation(dest(peer.port, { timeoutMs: 300 }), contexts());
    const started = Date.now();
    const first = association.store(files[0]!).catch((e: unknown) => e);
    const second = association.store(files[1]!).catch((e: unknown) => e);
    const [a, b] = await Promise.all([first, second]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(a).toBeInstanceOf(RetryableSendError);
    expect((a as Error).message).toMatch(/no C-STORE-RSP to message 1 within 300 ms/);
    expect(b).toBe(a);
  });

  test("no answer to A-ASSOCIATE-RQ within timeoutMs -> RetryableSendError", async () => {
    const peer = await scp({ onAssociate: () => "silent" });
    await expect(openAssociation(dest(peer.port, { timeoutMs: 300 }), contexts())).rejects.toThrow(
      /no TCP connection and association negotiation within 300 ms/,
    );
  });

  test("nothing listening -> RetryableSendError, quickly", async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await sendFiles(dest(port), study.files.slice(0, 1)).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(RetryableSendError);
    expect((err as Error).message).toBe(
      `C-STORE to RESEARCH@127.0.0.1:${port}: connection failed (ECONNREFUSED)`,
    );
  });

  test("local abort rejects the pending store", async () => {
    const peer = await scp({ onStore: () => "silent" });
    const association = await openAssociation(dest(peer.port), contexts());
    const pending = association.store(files[0]!);
    association.abort();
    await expect(pending).rejects.toThrow(/aborted locally/);
  });

  test("sendFiles with no files opens no association", async () => {
    const report = await sendFiles(dest(1), []);
    expect(report).toMatchObject({ files: [], associations: 0, succeeded: 0, failed: 0 });
  });

  test("invalid AE titles and UIDs are permanent errors without connecting", async () => {
    await expect(openAssociation({ ...dest(1), calledAe: "A\\B" }, contexts())).rejects.toThrow(
      PermanentSendError,
    );
    await expect(openAssociation({ ...dest(1), callingAe: "X".repeat(17) }, contexts())).rejects.toThrow(
      /calling AE title/,
    );
    await expect(
      openAssociation(dest(1), [{ sopClassUid: "1.2.3", transferSyntaxUid: "not a uid" }]),
    ).rejects.toThrow(PermanentSendError);
  });
});
