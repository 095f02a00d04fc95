/**
 * Streams one Part-10 instance to disk: meta header, the level's data set, then Pixel Data frame by
 * frame from the TIFF (bounded memory: a few MB of write buffer, never a whole level). Encapsulated
 * frames get a Basic Offset Table computed up front from the frame lengths (empty when the level is
 * 4 GiB or more, where 32-bit offsets overflow). Written to a hidden partial name, then renamed.
 */
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { buildPart10Header } from "../dicom/part10.js";
import {
  EXPLICIT_LE,
  ITEM,
  PIXEL_DATA,
  SEQUENCE_DELIMITER,
  UNDEFINED_LENGTH,
  VR,
  itemHeader,
  writeHeader,
} from "../deid/bytes.js";
import { WsiInputError } from "./errors.js";
import { WSM_SOP_CLASS_UID } from "./wsm-dataset.js";

/** The frames of one instance. */
export interface FrameSource {
  count: number;
  /** Encapsulated (one fragment per frame) or native (frames back to back). */
  encapsulated: boolean;
  /** Byte length of frame i as read, before padding to even length. */
  length(i: number): number;
  /** The bytes of frame i, possibly in pieces (for a vectored write). */
  read(i: number): Promise<Buffer[]>;
}

export interface InstanceMeta {
  sopInstanceUid: string;
  transferSyntaxUid: string;
}

/** Flush the write buffer at this size. */
const FLUSH_BYTES = 4 * 1024 * 1024;
const MAX_U32 = 0xffffffff;
const ZERO = Buffer.from([0]);

/** Name of the partial file an instance is written to before its rename. */
function partialName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.partial`);
}

function pixelDataHeader(frames: FrameSource): Buffer[] {
  const head = Buffer.alloc(12);
  if (!frames.encapsulated) {
    let total = 0;
    for (let i = 0; i < frames.count; i++) total += frames.length(i);
    const padded = total + (total % 2);
    if (padded > MAX_U32 - 1)
      throw new WsiInputError(`uncompressed level of ${padded} bytes exceeds the 4 GiB DICOM element limit`);
    writeHeader(head, 0, PIXEL_DATA, VR.OB, padded, EXPLICIT_LE);
    return [head];
  }
  writeHeader(head, 0, PIXEL_DATA, VR.OB, UNDEFINED_LENGTH, EXPLICIT_LE);
  const offsets = Buffer.alloc(frames.count * 4);
  let offset = 0;
  let fits = true;
  for (let i = 0; i < frames.count; i++) {
    if (offset > MAX_U32) fits = false;
    else offsets.writeUInt32LE(offset, i * 4);
    const length = frames.length(i);
    offset += 8 + length + (length % 2);
  }
  const bot = fits ? offsets : Buffer.alloc(0);
  return [head, itemHeader(ITEM, bot.length, EXPLICIT_LE), bot];
}

/**
 * Write meta + dataset + frames to file (atomically). onFrame runs after each frame; signal aborts
 * between frames and removes the partial file.
 */
export async function writeInstance(
  file: string,
  meta: InstanceMeta,
  dataset: Buffer,
  frames: FrameSource,
  onFrame?: (done: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const partial = partialName(file);
  const fh = await open(partial, "w");
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    let at = 0;
    while (at < pending.length) {
      const batch = pending.slice(at, at + 1024);
      await fh.writev(batch);
      at += batch.length;
    }
    pending = [];
    pendingBytes = 0;
  };
  const push = async (b: Buffer) => {
    pending.push(b);
    pendingBytes += b.length;
    if (pendingBytes >= FLUSH_BYTES) await flush();
  };
  try {
    const header = buildPart10Header({ sopClassUid: WSM_SOP_CLASS_UID, ...meta });
    for (const b of [header, dataset, ...pixelDataHeader(frames)]) await push(b);
    let nativeBytes = 0;
    for (let i = 0; i < frames.count; i++) {
      signal?.throwIfAborted();
      const length = frames.length(i);
      const pieces = await frames.read(i);
      const got = pieces.reduce((n, p) => n + p.length, 0);
      if (got !== length) throw new Error(`frame ${i}: ${got} bytes read, ${length} expected`);
      if (frames.encapsulated) await push(itemHeader(ITEM, length + (length % 2), EXPLICIT_LE));
      for (const p of pieces) await push(p);
      if (frames.encapsulated && length % 2) await push(ZERO);
      nativeBytes += length;
      onFrame?.(i + 1);
    }
    if (!frames.encapsulated && nativeBytes % 2) await push(ZERO);
    if (frames.encapsulated) await push(itemHeader(SEQUENCE_DELIMITER, 0, EXPLICIT_LE));
    await flush();
    await fh.close();
    await rename(partial, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw e;
  }
}
