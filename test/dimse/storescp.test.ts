/**
 * sendFiles against dcmtk storescp running bit-preserving (+B): what arrives on disk must be the sent
 * dataset byte for byte, in every transfer syntax, private tags and nested sequences included.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { NOT_SENT, parsePart10Meta, sendFiles, type StoreDestination } from "../../src/dimse/index.js";
import {
  generateStudy,
  TRANSFER_SYNTAX,
  type GeneratedStudy,
  type TransferSyntaxName,
} from "../support/generate.js";
import { hasCommand, startStorescp, type Storescp } from "../support/peers.js";

const haveDcmtk = hasCommand("storescp") && hasCommand("dcmdump");
const SYNTAXES: TransferSyntaxName[] = ["explicit-le", "implicit-le", "explicit-be"];

function dest(port: number): StoreDestination {
  return { host: "127.0.0.1", port, calledAe: "RESEARCH", callingAe: "FIONA_TEST", timeoutMs: 10_000 };
}

/** storescp names files "<modality>.<SOP Instance UID>". */
function receivedByUid(dir: string): Map<string, string> {
  return new Map(readdirSync(dir).map((name) => [name.slice(name.indexOf(".") + 1), path.join(dir, name)]));
}

function datasetOf(file: string): { ts: string; dataset: Buffer } {
  const bytes = readFileSync(file);
  const meta = parsePart10Meta(bytes);
  return { ts: meta.transferSyntaxUid, dataset: bytes.subarray(meta.datasetOffset) };
}

function dcmdump(file: string): string {
  const r = spawnSync("dcmdump", ["-M", "+L", file], { encoding: "latin1" });
  if (r.status !== 0) throw new Error(`dcmdump failed: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!haveDcmtk)("sendFiles -> dcmtk storescp (+B)", () => {
  let work: string;
  const studies = {} as Record<TransferSyntaxName, GeneratedStudy>;
  const peers: Storescp[] = [];

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "fiona-dimse-"));
    for (const ts of SYNTAXES) {
      studies[ts] = generateStudy({
        outDir: path.join(work, "in", ts),
        seed: `dimse-${ts}`,
        series: 2,
        instancesPerSeries: 3,
        transferSyntax: ts,
      });
    }
  });

  afterAll(async () => {
    await Promise.all(peers.map((p) => p.stop()));
    rmSync(work, { recursive: true, force: true });
  });

  async function storescp(name: string, args?: string[]): Promise<Storescp> {
    const peer = await startStorescp(path.join(work, name), args);
    peers.push(peer);
    return peer;
  }

  test("explicit LE, implicit LE and explicit BE arrive byte-identical over one association", async () => {
    const peer = await storescp("all", ["+xa"]);
    const files = SYNTAXES.flatMap((ts) => studies[ts].files);
    const progress: number[] = [];
    const report = await sendFiles(dest(peer.port), files, { onProgress: (p) => progress.push(p.done) });

    expect(report.failed).toBe(0);
    expect(report.succeeded).toBe(files.length);
    expect(report.associations).toBe(1);
    expect(report.files.map((f) => f.path)).toEqual(files);
    expect(progress).toEqual(files.map((_, i) => i + 1));
    expect(report.destination).toBe(`RESEARCH@127.0.0.1:${peer.port}`);

    const received = receivedByUid(peer.dir);
    expect(received.size).toBe(files.length);
    for (const ts of SYNTAXES) {
      for (const [i, file] of studies[ts].files.entries()) {
        const got = received.get(studies[ts].sopInstanceUids[i]!);
        expect(got, `received ${file}`).toBeDefined();
        const sent = datasetOf(file);
        const arrived = datasetOf(got!);
        expect(arrived.ts).toBe(TRANSFER_SYNTAX[ts]);
        expect(arrived.dataset.length).toBe(sent.dataset.length);
        expect(Buffer.compare(arrived.dataset, sent.dataset), `dataset bytes of ${file}`).toBe(0);
      }
    }
    // Not vacuous: the received files do hold the private blocks and the nested private sequence.
    for (const ts of SYNTAXES) {
      const dump = dcmdump(received.get(studies[ts].sopInstanceUids[0]!)!);
      expect(dump).toMatch(/\(0009,0010\) LO \[FIONA TEST PRIVATE\]/);
      expect(dump).toMatch(/\(0009,1010\) SQ/);
      expect(dump).toMatch(/^\s+\(0009,1011\) SQ/m);
      expect(dump).toMatch(/\(0029,1010\) OB/);
      expect(dump).toMatch(/\(0040,0275\) SQ/);
      // Implicit VR: dcmtk does not know the private VR and shows the bytes ("private text value").
      expect(dump).toMatch(/\(0009,1001\) (LO \[private text value\]|\?\? 70\\72\\69\\76)/);
    }
    // storescp saw exactly one association (and it was released, not aborted).
    await expect.poll(() => peer.output()).toMatch(/Association Release/);
    expect(peer.associations()).toBe(1);
    expect(peer.output()).not.toMatch(/Aborted/);
  });

  test("a peer accepting implicit LE only: other syntaxes fail permanently, never transcoded", async () => {
    const peer = await storescp("implicit-only", ["+xi"]);
    const files = [
      studies["explicit-le"].files[0]!,
      studies["implicit-le"].files[0]!,
      studies["explicit-be"].files[0]!,
    ];
    const report = await sendFiles(dest(peer.port), files);
    expect(report.associations).toBe(1);
    const [le, implicit, be] = report.files.map((f) => f.outcome);
    expect(implicit).toEqual({ status: 0, kind: "success", retryable: false });
    for (const outcome of [le!, be!]) {
      expect(outcome.kind).toBe("failure");
      expect(outcome.retryable).toBe(false);
      expect(outcome.status).toBe(NOT_SENT);
      expect(outcome.reason).toMatch(/RESEARCH@127\.0\.0\.1:\d+ rejected the presentation context/);
      expect(outcome.reason).toMatch(/transfer syntax not supported/);
    }
    const received = receivedByUid(peer.dir);
    expect(received.size).toBe(1);
    expect(datasetOf(received.get(studies["implicit-le"].sopInstanceUids[0]!)!).ts).toBe(
      TRANSFER_SYNTAX["implicit-le"],
    );
  });

  test("a peer that does not support the SOP class: permanent failure per file, association still released", async () => {
    const cfg = path.join(work, "ct-only.cfg");
    writeFileSync(
      cfg,
      [
        "[[TransferSyntaxes]]",
        "[Uncompressed]",
        "TransferSyntax1 = LocalEndianExplicit",
        "TransferSyntax2 = OppositeEndianExplicit",
        "TransferSyntax3 = LittleEndianImplicit",
        "[[PresentationContexts]]",
        "[CTOnly]",
        "PresentationContext1 = CTImageStorage\\Uncompressed",
        "[[Profiles]]",
        "[CT]",
        "PresentationContexts = CTOnly",
        "",
      ].join("\n"),
    );
    const peer = await storescp("ct-only", ["-xf", cfg, "CT"]);
    const report = await sendFiles(dest(peer.port), studies["explicit-le"].files.slice(0, 2));
    expect(report.failed).toBe(2);
    expect(report.retryable).toBe(0);
    for (const { outcome } of report.files) {
      expect(outcome.status).toBe(NOT_SENT);
      expect(outcome.reason).toMatch(
        /SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.4 .*abstract syntax \(SOP class\) not supported/,
      );
    }
    await expect.poll(() => peer.output()).toMatch(/Association Release/);
    expect(readdirSync(peer.dir)).toEqual([]);
  });
});
