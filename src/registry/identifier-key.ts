/**
 * Keyed digests for identifying values that Redis must be able to look up but never hold: accession
 * numbers in the incoming list and in coupling lists. A plain hash of an accession number is no
 * protection (they are short and often sequential, so every one can be tried); an HMAC without the
 * key is. The key is derived from the site secret, or, on a site without one, is a random key made
 * once and kept in `<dataDir>/identifier-index.key` (mode 0600). Every process of a site must use the
 * same key: processes that do not share the data directory need the secret.
 */
import { createHmac, randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { FionaConfig } from "../config/schema.js";
import { tempName } from "../fs/temp-name.js";

export const IDENTIFIER_KEY_FILE = "identifier-index.key";

const loaded = new Map<string, Buffer>();

function parse(file: string, text: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} does not hold an identifier key (64 hex digits)`);
  return Buffer.from(hex, "hex");
}

/** The key in the file, or a new random one written there (when two processes race, the first wins). */
function keyFile(file: string): Buffer {
  try {
    return parse(file, readFileSync(file, "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), tempName(IDENTIFIER_KEY_FILE));
  try {
    writeFileSync(tmp, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    // A link, unlike a rename, never replaces a key another process made meanwhile.
    linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
  return parse(file, readFileSync(file, "utf8"));
}

/** The site's key for identifier digests (see above). */
export function identifierKey(cfg: Pick<FionaConfig, "secret" | "dataDir">): Buffer {
  // Its own derivation: no digest of an identifier equals a pseudonymized UID or date offset.
  if (cfg.secret) return createHmac("sha256", cfg.secret).update("fiona identifier digests").digest();
  const file = path.resolve(cfg.dataDir, IDENTIFIER_KEY_FILE);
  let key = loaded.get(file);
  if (!key) {
    key = keyFile(file);
    loaded.set(file, key);
  }
  return key;
}

/** The digest standing for one identifying value of a kind ("accession", …), trimmed. */
export function identifierDigest(key: Buffer, kind: string, value: string): string {
  return createHmac("sha256", key).update(`${kind}\0${value.trim()}`).digest("hex").slice(0, 32);
}

/** Names the key without revealing it, so that a change of key is noticed (and the index rebuilt). */
export function identifierKeyId(key: Buffer): string {
  return createHmac("sha256", key).update("key id").digest("hex").slice(0, 16);
}
