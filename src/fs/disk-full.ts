const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT"]);

export interface DiskFull {
  code: string;
  syscall?: string;
}

/**
 * The full disk or quota (ENOSPC, EDQUOT) behind an error: the error itself or one it wraps as its
 * `cause`, as far down as it goes; undefined for any other error. Such errors pass: space comes back.
 */
export function diskFullOf(err: unknown): DiskFull | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 16 && typeof e === "object" && e !== null; depth++) {
    const { code, syscall, cause } = e as { code?: unknown; syscall?: unknown; cause?: unknown };
    if (typeof code === "string" && DISK_FULL_CODES.has(code))
      return { code, ...(typeof syscall === "string" ? { syscall } : {}) };
    e = cause;
  }
  return undefined;
}
