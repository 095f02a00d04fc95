import fs from "node:fs";
import { Writable } from "node:stream";

export interface CollectorOptions {
  /** Above this many dataset bytes the collector stops holding fragments in memory and spills to a file. */
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
 * The Writable handed to dcmjs-dimse for one C-STORE dataset. Fragments stay in memory as the Buffers
 * the network layer produced (no copy, no file open per instance); only a dataset larger than
 * `spillThreshold` goes to a temporary file, with synchronous writes. `write()` never applies
 * backpressure, so the network layer never waits for "drain".
 */
export class DatasetCollector extends Writable {
  readonly chunks: Buffer[] = [];
  /** Dataset bytes received so far. */
  length = 0;
  spill: SpillState | undefined;
  /** First error while spilling; the instance must then be answered with a failure. */
  error: Error | undefined;

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

  private add(chunk: Buffer): void {
    this.length += chunk.length;
    if (this.error !== undefined) return;
    try {
      if (this.spill === undefined) {
        this.chunks.push(chunk);
        if (this.length > this.opts.spillThreshold) this.startSpill();
      } else if (this.spill.fd !== undefined) {
        writeAll(this.spill.fd, chunk);
      }
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      this.closeSpill();
    }
  }

  private startSpill(): void {
    const header = this.opts.spillHeader();
    const head = Buffer.concat(header === undefined ? this.chunks : [header, ...this.chunks]);
    const path = this.opts.spillPath();
    this.spill = { path, headerLength: header?.length ?? 0, head, fd: undefined };
    this.spill.fd = fs.openSync(path, "w", 0o640);
    this.chunks.length = 0;
    writeAll(this.spill.fd, head);
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

  /** Drop everything: close and remove a spill file. */
  discard(): void {
    this.chunks.length = 0;
    try {
      this.closeSpill();
    } catch {
      // already closed or broken; the unlink below is what matters
    }
    if (this.spill !== undefined) fs.rmSync(this.spill.path, { force: true });
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}
