import { afterEach, describe, expect, it } from "vitest";
import { run, startTestReceiver, waitFor, type TestReceiver } from "./helpers.js";
import { RawScu } from "./raw-scu.js";

const VERIFICATION = "1.2.840.10008.1.1";
const IMPLICIT_LE = "1.2.840.10008.1.2";

describe("association limits", () => {
  let rx: TestReceiver | undefined;
  afterEach(async () => {
    await rx?.close();
    rx = undefined;
  });

  it("rejects calling AE titles that are not on the allow-list (permanent, calling AE not recognized)", async () => {
    rx = await startTestReceiver({ receiver: { allowedCallingAeTitles: ["GOODSCU"] } });
    const bad = await run("echoscu", [
      "-aet",
      "BADSCU",
      "-aec",
      "FIONA",
      "127.0.0.1",
      String(rx.handle.port),
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/Association Rejected/i);
    expect(bad.stdout + bad.stderr).toMatch(/Calling AE Title Not Recognized/i);
    const good = await run("echoscu", [
      "-aet",
      "GOODSCU",
      "-aec",
      "ANYTHING",
      "127.0.0.1",
      String(rx.handle.port),
    ]);
    expect(good.code, good.stderr).toBe(0);

    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    const r = await scu.associate("BADSCU", "FIONA", [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
    ]);
    expect(r.accepted).toBe(false);
    expect(r.reject).toEqual({ result: 1, source: 1, reason: 3 });
    scu.destroy();
    expect(rx.handle.stats().associationsRejected).toBe(2);
    const event = rx.logs.find((l) => l.event === "association" && l.result === "rejected");
    expect(event).toMatchObject({ callingAe: "BADSCU", reason: "calling AE title not allowed" });
  });

  it("enforces maxAssociations with a transient rejection and recovers when one ends", async () => {
    rx = await startTestReceiver({ receiver: { maxAssociations: 1 } });
    const port = rx.handle.port;
    const holder = await RawScu.connect("127.0.0.1", port);
    const held = await holder.associate("HOLDER", "FIONA", [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
    ]);
    expect(held.accepted).toBe(true);
    expect(rx.handle.activeAssociations()).toBe(1);

    const second = await RawScu.connect("127.0.0.1", port);
    const r = await second.associate("SECOND", "FIONA", [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
    ]);
    expect(r.accepted).toBe(false);
    expect(r.reject).toEqual({ result: 2, source: 3, reason: 2 }); // transient, presentation, local limit
    second.destroy();
    const echo = await run("echoscu", ["-aec", "FIONA", "127.0.0.1", String(port)]);
    expect(echo.code).not.toBe(0);
    expect(echo.stdout + echo.stderr).toMatch(/Association Rejected/i);

    expect((await holder.echo(1))?.status).toBe(0);
    await holder.release();
    await waitFor(() => rx!.handle.activeAssociations() === 0);
    const again = await run("echoscu", ["-aec", "FIONA", "127.0.0.1", String(port)]);
    expect(again.code, again.stderr).toBe(0);
  });

  it("close() waits for a released association and aborts one that stays open", async () => {
    rx = await startTestReceiver({}, { closeTimeoutMs: 300 });
    const scu = await RawScu.connect("127.0.0.1", rx.handle.port);
    await scu.associate("LINGER", "FIONA", [
      { id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [IMPLICIT_LE] },
    ]);
    expect(rx.handle.listening()).toBe(true);
    const t0 = Date.now();
    await rx.handle.close();
    expect(rx.handle.listening()).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await waitFor(() => scu.isClosed);
    // new connections are refused once closed
    const r = await run("echoscu", ["-to", "2", "-aec", "FIONA", "127.0.0.1", String(rx.handle.port)]);
    expect(r.code).not.toBe(0);
  });
});
