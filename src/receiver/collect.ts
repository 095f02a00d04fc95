import fs from "node:fs";
import { dirname } from "node:path";
import { Writable } from "node:stream";

/** Bytes reserved in front of the dataset for the Part-10 preamble and meta (ours are ~350 bytes). */
const HEADER_ROOM = 1024;
/** How much of a spilled dataset is kept in memory to read the identifying attributes from. */
const SPILL_HEAD_BYTES = 4 * 1024 * 1024;

/**
 * Reusable assembly buffers. Each arriving dataset is copied once, into a pooled buffer, and written
 * from there; allocating ~130 KB per instance instead keeps V8's garbage collector busy (external
 * memory churn), which cost more CPU than the copy itself.
 */
class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    private readonly maxFree: number,
    private readonly maxPooledSize: number,
  ) {}

  acquire(min: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = (this.free[i] as Buffer).length;
      if (
        len >= min &&
        len <= 4 * Math.max(min, 256 * 1024) &&
        (best < 0 || len < (this.free[best] as Buffer).length)
      ) {
        best = i;
      }
    }
    if (best >= 0) return this.free.splice(best, 1)[0] as Buffer;
    let size = 256 * 1024;
    while (size < min) size *= 2;
    return Buffer.allocUnsafeSlow(size);
  }

  release(buf: Buffer): void {
    if (buf.length > this.maxPooledSize) return;
    if (this.free.length >= this.maxFree) this.free.shift();
    this.free.push(buf);
  }
}

/** At most 16 idle buffers of at most 4 MiB each are kept (64 MiB); bigger ones are left to the GC. */
const pool = new BufferPool(16, 4 * 1024 * 1024);

export interface CollectorOptions {
  /** Above this many dataset bytes the collector stops holding the dataset in memory and spills to a file. */
  spillThreshold: number;
  /** Where to open the spill file: a fresh path on the archive filesystem. */
  spillPath: () => string;
  /** The Part-10 preamble and meta to put in front of a spilled dataset (undefined: write the raw dataset). */
  spillHeader: () => Buffer | undefined;
}

export interface SpillState {
  path: string;
  /** Length of the Part-10 header the spill file starts with (0: raw dataset, the command UIDs were invalid). */
  headerLength: number;
  /** The first bytes of the file (header + start of the dataset), to read the identifying attributes. */
  head: Buffer;
  fd: number | undefined;
}

/**
 * Collects one C-STORE dataset as it arrives: copied into a pooled buffer with room for the Part-10
 * header in front, so the file is written with one write and no further copy. Only a dataset larger
 * than `spillThreshold` goes to a temporary file (synchronous writes). As a Writable (the library
 * path) `write()` never applies backpressure, so the network layer never waits for "drain".
 */
export class DatasetCollector extends Writable {
  /** Dataset bytes received so far. */
  length = 0;
  spill: SpillState | undefined;
  /** First error while buffering or spilling; the instance must then be answered with a failure. */
  error: Error | undefined;
  private buf: Buffer | undefined;

  constructor(private readonly opts: CollectorOptions) {
    super({ highWaterMark: 1 << 30, decodeStrings: false });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.add(chunk);
    callback();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    for (const c of chunks) this.add(c.chunk);
    callback();
  }

  /** Append dataset bytes (copied; the caller may reuse `chunk`). */
  add(chunk: Buffer): void {
    const start = this.length;
    this.length += chunk.length;
    if (this.error !== undefined) return;
    try {
      if (this.spill !== undefined) {
        if (this.spill.fd !== undefined) writeAll(this.spill.fd, chunk);
        return;
      }
      if (this.length > this.opts.spillThreshold) {
        this.startSpill(chunk, start);
        return;
      }
      const need = HEADER_ROOM + this.length;
      if (this.buf === undefined || this.buf.length < need) {
        const bigger = pool.acquire(Math.max(need, 2 * (this.buf?.length ?? 0)));
        if (this.buf !== undefined) {
          this.buf.copy(bigger, HEADER_ROOM, HEADER_ROOM, HEADER_ROOM + start);
          pool.release(this.buf);
        }
        this.buf = bigger;
      }
      chunk.copy(this.buf, HEADER_ROOM + start);
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      this.discard();
    }
  }

  private startSpill(chunk: Buffer, start: number): void {
    const header = this.opts.spillHeader();
    const path = this.opts.spillPath();
    const fd = openCreating(path);
    this.spill = { path, headerLength: header?.length ?? 0, head: Buffer.alloc(0), fd };
    if (header !== undefined) writeAll(fd, header);
    const held = this.buf?.subarray(HEADER_ROOM, HEADER_ROOM + start) ?? Buffer.alloc(0);
    writeAll(fd, held);
    writeAll(fd, chunk);
    const headData = Buffer.concat([held, chunk]).subarray(0, SPILL_HEAD_BYTES);
    this.spill.head = header === undefined ? Buffer.from(headData) : Buffer.concat([header, headData]);
    this.release();
  }

  /** The raw dataset received so far (in-memory only; a view, valid until release()). */
  dataset(): Buffer {
    return this.buf?.subarray(HEADER_ROOM, HEADER_ROOM + this.length) ?? Buffer.alloc(0);
  }

  /** The Part-10 file: `header` followed by the dataset (a view, valid until release()). */
  part10(header: Buffer): Buffer {
    if (this.buf === undefined) return Buffer.from(header);
    if (header.length > HEADER_ROOM) return Buffer.concat([header, this.dataset()]);
    header.copy(this.buf, HEADER_ROOM - header.length);
    return this.buf.subarray(HEADER_ROOM - header.length, HEADER_ROOM + this.length);
  }

  /** Give the in-memory buffer back to the pool; views from dataset()/part10() become invalid. */
  release(): void {
    if (this.buf !== undefined) pool.release(this.buf);
    this.buf = undefined;
  }

  /** Close the spill file (after an optional fsync). Safe to call more than once. */
  closeSpill(fsync = false): void {
    const fd = this.spill?.fd;
    if (fd === undefined || this.spill === undefined) return;
    this.spill.fd = undefined;
    try {
      if (fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Drop everything: release memory, close and remove a spill file. */
  discard(): void {
    this.release();
    try {
      this.closeSpill();
    } catch {
      // already closed or broken; the unlink below is what matters
    }
    if (this.spill !== undefined) fs.rmSync(this.spill.path, { force: true });
  }
}

/** Open a new file for writing, creating its directory if a cleanup removed it. */
function openCreating(file: string): number {
  try {
    return fs.openSync(file, "w", 0o640);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    fs.mkdirSync(dirname(file), { recursive: true });
    return fs.openSync(file, "w", 0o640);
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}
