/** The engine's output: a list of buffers, mostly slices of the input, concatenated once at the end. */
export class Out {
  chunks: Buffer[] = [];
  size = 0;
  /** Something differs from the input bytes this output stands for. */
  changed = false;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.size += b.length;
  }

  copy(buf: Buffer, from: number, to: number): void {
    if (to > from) this.push(buf.subarray(from, to));
  }

  append(other: Out): void {
    for (const c of other.chunks) this.chunks.push(c);
    this.size += other.size;
  }

  /** A re-encoded sequence or item: its header, its content, and its delimiter when it has one. */
  enclose(header: Buffer, content: Out, delimiter: Buffer | undefined): void {
    this.push(header);
    this.append(content);
    if (delimiter) this.push(delimiter);
    this.changed = true;
  }
}
