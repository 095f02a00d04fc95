import { randomBytes, scrypt, scryptSync, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Password hashes of web users (web.users[].passwordHash, <dataDir>/users.json), in the form
 *   scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>
 * (node:crypto scrypt, no dependency). Verification reads the parameters from the stored string, so
 * stronger parameters can be adopted later without invalidating old hashes.
 */

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** ≈ 32 MiB and ≈ 50–100 ms per hash on a small server: fine for an admin login that is then cached. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = { N: 2 ** 15, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;

/** Bounds on parameters read back from a stored hash, so a malformed or hostile string cannot pin the CPU. */
const LIMITS = {
  minLogN: 10,
  maxLogN: 20,
  maxR: 32,
  maxP: 16,
  /** 128·N·r bytes of memory per hash. */
  maxMemory: 256 * 1024 * 1024,
  minSalt: 8,
  maxSalt: 64,
  minKey: 16,
  maxKey: 128,
};

interface ParsedHash extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const INT = /^[1-9][0-9]{0,9}$/;

function memoryFor({ N, r }: ScryptParams): number {
  return 128 * N * r;
}

function checkParams(params: ScryptParams): string | null {
  const { N, r, p } = params;
  if (!Number.isSafeInteger(N) || N < 2 ** LIMITS.minLogN || N > 2 ** LIMITS.maxLogN || (N & (N - 1)) !== 0) {
    return `N must be a power of two between 2^${LIMITS.minLogN} and 2^${LIMITS.maxLogN}`;
  }
  if (!Number.isSafeInteger(r) || r < 1 || r > LIMITS.maxR) return `r must be 1..${LIMITS.maxR}`;
  if (!Number.isSafeInteger(p) || p < 1 || p > LIMITS.maxP) return `p must be 1..${LIMITS.maxP}`;
  if (memoryFor(params) > LIMITS.maxMemory) return "parameters need too much memory";
  return null;
}

function decodeB64(s: string): Buffer | null {
  if (!B64.test(s)) return null;
  const buf = Buffer.from(s, "base64");
  return buf.length > 0 ? buf : null;
}

/** Parses a stored hash; null when it is not a well-formed scrypt hash within the accepted bounds. */
function parseHash(stored: string): ParsedHash | null {
  if (typeof stored !== "string" || stored.length > 1024) return null;
  const parts = stored.trim().split("$");
  if (parts.length !== 6) return null;
  const [scheme, nStr, rStr, pStr, saltStr, hashStr] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (scheme !== "scrypt" || !INT.test(nStr) || !INT.test(rStr) || !INT.test(pStr)) return null;
  const params = { N: Number(nStr), r: Number(rStr), p: Number(pStr) };
  if (checkParams(params) !== null) return null;
  const salt = decodeB64(saltStr);
  const hash = decodeB64(hashStr);
  if (!salt || salt.length < LIMITS.minSalt || salt.length > LIMITS.maxSalt) return null;
  if (!hash || hash.length < LIMITS.minKey || hash.length > LIMITS.maxKey) return null;
  return { ...params, salt, hash };
}

function scryptOptions(params: ScryptParams): ScryptOptions {
  // Node's default maxmem is 32 MiB, which N=2^15, r=8 just reaches; leave headroom.
  return { N: params.N, r: params.r, p: params.p, maxmem: memoryFor(params) * 2 };
}

/** True when `stored` looks like a hash this module can verify (for config validation and the CLI). */
export function isPasswordHash(stored: string): boolean {
  return parseHash(stored) !== null;
}

/** Hashes a password with a fresh random salt. Synchronous (it is meant for the CLI). */
export function hashPassword(plain: string, params: Partial<ScryptParams> = {}): string {
  const full: ScryptParams = { ...DEFAULT_SCRYPT_PARAMS, ...params };
  const problem = checkParams(full);
  if (problem) throw new RangeError(`hashPassword: ${problem}`);
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(plain.normalize("NFC"), salt, KEY_BYTES, scryptOptions(full));
  return ["scrypt", full.N, full.r, full.p, salt.toString("base64"), hash.toString("base64")].join("$");
}

/**
 * Checks a password against a stored hash with a constant-time compare. A malformed stored hash
 * verifies nothing (returns false, never throws). Synchronous: it blocks the event loop for the
 * length of one scrypt, so servers should use verifyPasswordAsync.
 */
export function verifyPassword(plain: string, stored: string): boolean {
  const parsed = parseHash(stored);
  if (!parsed || typeof plain !== "string") return false;
  try {
    const candidate = scryptSync(
      plain.normalize("NFC"),
      parsed.salt,
      parsed.hash.length,
      scryptOptions(parsed),
    );
    return timingSafeEqual(candidate, parsed.hash);
  } catch {
    return false;
  }
}

/** verifyPassword on the libuv thread pool, so the event loop keeps serving while scrypt runs. */
export function verifyPasswordAsync(plain: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed || typeof plain !== "string") return Promise.resolve(false);
  return new Promise((resolve) => {
    scrypt(
      plain.normalize("NFC"),
      parsed.salt,
      parsed.hash.length,
      scryptOptions(parsed),
      (err, candidate) => {
        resolve(!err && timingSafeEqual(candidate, parsed.hash));
      },
    );
  });
}
