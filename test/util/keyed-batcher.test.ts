import { describe, expect, it } from "vitest";
import { KeyedBatcher } from "../../src/util/keyed-batcher.js";

describe("KeyedBatcher", () => {
  it("runs one handler per key at a time and batches what arrives meanwhile, in order", async () => {
    const calls: Array<[string, number[]]> = [];
    let active = 0;
    let maxActive = 0;
    const b = new KeyedBatcher<number, number>(async (key, items) => {
      active++;
      maxActive = Math.max(maxActive, active);
      calls.push([key, items]);
      await new Promise((r) => setTimeout(r, 20));
      active--;
      return items.length;
    });
    const first = [1, 2, 3].map((i) => b.submit("a", i));
    await new Promise((r) => setTimeout(r, 5));
    const later = [4, 5].map((i) => b.submit("a", i));
    const other = b.submit("b", 9);
    expect(await Promise.all([...first, ...later, other])).toEqual([3, 3, 3, 2, 2, 1]);
    expect(calls).toEqual([
      ["a", [1, 2, 3]],
      ["b", [9]],
      ["a", [4, 5]],
    ]);
    expect(maxActive).toBe(2); // keys a and b concurrently, never a twice
  });

  it("rejects every submitter of a failed batch and keeps serving the key", async () => {
    let fail = true;
    const b = new KeyedBatcher<number, string>(async () => {
      if (fail) throw new Error("disk full");
      return "ok";
    });
    await expect(Promise.all([b.submit("k", 1), b.submit("k", 2)])).rejects.toThrow("disk full");
    fail = false;
    await expect(b.submit("k", 3)).resolves.toBe("ok");
  });
});
