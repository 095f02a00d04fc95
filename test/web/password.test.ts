import { describe, expect, it } from "vitest";
import {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  isPasswordHash,
  verifyPassword,
  verifyPasswordAsync,
} from "../../src/web/password.js";

const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe("password hashing", () => {
  it("round-trips with the default parameters and rejects a wrong password", () => {
    const stored = hashPassword("correct horse battery staple");
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/);
    expect(stored.split("$")[1]).toBe(String(DEFAULT_SCRYPT_PARAMS.N));
    expect(verifyPassword("correct horse battery staple", stored)).toBe(true);
    expect(verifyPassword("correct horse battery stapler", stored)).toBe(false);
    expect(verifyPassword("", stored)).toBe(false);
  });

  it("salts every hash", () => {
    const a = hashPassword("same", FAST);
    const b = hashPassword("same", FAST);
    expect(a).not.toBe(b);
    expect(verifyPassword("same", a)).toBe(true);
    expect(verifyPassword("same", b)).toBe(true);
  });

  it("verifies asynchronously", async () => {
    const stored = hashPassword("pässwörd", FAST);
    await expect(verifyPasswordAsync("pässwörd", stored)).resolves.toBe(true);
    await expect(verifyPasswordAsync("passwörd", stored)).resolves.toBe(false);
  });

  it("treats NFC and NFD spellings of a password alike", () => {
    const stored = hashPassword("caf\u00e9", FAST);
    expect(verifyPassword("cafe\u0301", stored)).toBe(true);
  });

  it("rejects malformed or out-of-bounds hashes without throwing", async () => {
    const good = hashPassword("pw", FAST);
    const [, n, r, p, salt, hash] = good.split("$") as [string, string, string, string, string, string];
    const bad = [
      "",
      "pw",
      "scrypt",
      `bcrypt$${n}$${r}$${p}$${salt}$${hash}`,
      `scrypt$${n}$${r}$${p}$${salt}`,
      `scrypt$${n}$${r}$${p}$${salt}$${hash}$extra`,
      `scrypt$1000$${r}$${p}$${salt}$${hash}`, // N not a power of two
      `scrypt$2$${r}$${p}$${salt}$${hash}`, // N too small
      `scrypt$${2 ** 24}$${r}$${p}$${salt}$${hash}`, // N too large
      `scrypt$${n}$0$${p}$${salt}$${hash}`,
      `scrypt$${n}$${r}$99$${salt}$${hash}`,
      `scrypt$-1024$${r}$${p}$${salt}$${hash}`,
      `scrypt$${n}$${r}$${p}$!!!$${hash}`,
      `scrypt$${n}$${r}$${p}$${salt}$`,
      `scrypt$${n}$${r}$${p}$${salt}$AAAA`, // hash too short
      `scrypt$${n}$${r}$${p}$AA==$${hash}`, // salt too short
      "x".repeat(5000),
    ];
    for (const stored of bad) {
      expect(isPasswordHash(stored), stored).toBe(false);
      expect(verifyPassword("pw", stored), stored).toBe(false);
      await expect(verifyPasswordAsync("pw", stored)).resolves.toBe(false);
    }
    expect(isPasswordHash(good)).toBe(true);
    // Not a string at all (e.g. a config typo), through the untyped door.
    expect(verifyPassword("pw", undefined as unknown as string)).toBe(false);
  });

  it("refuses to hash with unsafe parameters", () => {
    expect(() => hashPassword("pw", { N: 1000 })).toThrow(RangeError);
    expect(() => hashPassword("pw", { r: 0 })).toThrow(RangeError);
  });
});
