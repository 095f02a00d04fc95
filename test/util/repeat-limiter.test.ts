import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RepeatLimiter } from "../../src/util/repeat-limiter.js";

let lines: string[];
const limiter = () =>
  new RepeatLimiter<string>({
    windowMs: 10_000,
    maxKeys: 2,
    first: (key, detail) => lines.push(`${key} from ${detail}`),
    repeated: (key, count, details) => lines.push(`${key} x${count} from ${details.join(",")}`),
  });

beforeEach(() => {
  lines = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("RepeatLimiter", () => {
  it("passes the first at once and then one summary per window while it repeats", () => {
    const l = limiter();
    l.note("refused", "a");
    for (let i = 0; i < 50; i++) l.note("refused", i % 2 ? "a" : "b");
    expect(lines).toEqual(["refused from a"]);
    vi.advanceTimersByTime(10_000);
    expect(lines).toEqual(["refused from a", "refused x50 from b,a"]);
    l.note("refused", "a");
    vi.advanceTimersByTime(5_000);
    expect(lines).toHaveLength(2); // the next summary comes a window after the last one
    vi.advanceTimersByTime(5_000);
    expect(lines.at(-1)).toBe("refused x1 from a");
  });

  it("forgets a key quiet for a window, so its return is reported at once", () => {
    const l = limiter();
    l.note("refused", "a");
    vi.advanceTimersByTime(20_000);
    l.note("refused", "a");
    expect(lines).toEqual(["refused from a", "refused from a"]);
  });

  it("reset passes what is pending on and forgets every key", () => {
    const l = limiter();
    l.note("refused", "a");
    l.note("refused", "a");
    l.reset();
    l.note("refused", "a");
    expect(lines).toEqual(["refused from a", "refused x1 from a", "refused from a"]);
  });

  it("counts keys beyond maxKeys together", () => {
    const l = limiter();
    for (const k of ["one", "two", "three", "four"]) l.note(k, "a");
    expect(lines).toEqual(["one from a", "two from a", "(other messages) from a"]);
  });
});
