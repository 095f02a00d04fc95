/**
 * Persist one received instance, then enqueue its ingest job; decide the C-STORE status.
 *
 * Order of operations for a good instance (all file work synchronous: one small file per instance is
 * faster written with one write than with several thread-pool round trips):
 *   0. the free-space floor: when the instance would leave less, Out of Resources, nothing written;
 *   1. preamble + meta + dataset in one buffer, parsed for the identifying UIDs and checked;
 *   2. written to `<archive>/.tmp/<name of this process>` (optionally fsync'ed), renamed to
 *      `<archive>/scp_<StudyInstanceUID>/<MOD>.<SOPInstanceUID>`;
 *   3. the ingest job is added and noted pending for its study's arrival (one Redis round trip, sent
 *      while 2 runs when the instance is new);
 *   4. only then, when both are done, Success.
 * If 2 or 3 fails the answer is Out of Resources (0xA700) and the archive is left as it was before:
 * the temporary file is removed; a newly archived file is removed again (it was never acknowledged);
 * when the SOP instance had been archived before, the earlier bytes (kept as a hard link while the new
 * ones are enqueued) are put back, since they were acknowledged and have a job. Operations on one
 * archive path are serialised within the process, so two associations delivering the same instance
 * cannot undo each other.
 *
 * A dataset that cannot be parsed or has missing/invalid UIDs is answered 0xC000 (or 0xA900 when its
 * SOP Class/Instance UID disagrees with the command) and its bytes are kept under
 * `<data>/site/quarantine-bad/<time>_<random>.dcm` with a `.json` sidecar (no patient data).
 *
 * Known limit: a crash between rename and enqueue leaves an archived file with no job (it was never
 * acknowledged, so the sender retries and the retry enqueues it; else the reconciler, src/cleanup,
 * queues one). A crash mid-write leaves the temporary file, named after this process, for the next
 * start or the orphan sweep (src/cleanup/temp-dir.ts). A job can reach Redis before its
 * file is renamed into place, and an enqueue that timed out may reach Redis after its file was
 * removed: ingest waits a moment for a missing file, then treats it as done.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { buildPart10Header } from "../dicom/part10.js";
import { isPathSafeUid } from "../dicom/uid.js";
import { rateLimitedWarn } from "../dimse/admission.js";
import { emptyCounts, sweepTempDir } from "../cleanup/temp-dir.js";
import type { SpaceGuard } from "../fs/space.js";
import { tempName } from "../fs/temp-name.js";
import type { SitePaths } from "../paths.js";
import type { IngestJob } from "../queues/index.js";
import type { DatasetCollector } from "./collect.js";
import { identifyDataset, type InstanceIdentity } from "./identify.js";
import { fileModality } from "./policy.js";

/** C-STORE statuses used by the receiver (PS3.4 B.2.3). */
export const STORE_STATUS = {
  Success: 0x0000,
  OutOfResources: 0xa700,
  DataSetDoesNotMatchSopClass: 0xa900,
  CannotUnderstand: 0xc000,
} as const;

export interface StoreRequestInfo {
  callingAe: string;
  calledAe: string;
  /** Peer IP address. */
  peer: string;
  /** Affected SOP Class/Instance UID from the C-STORE command. */
  sopClassUid: string;
  sopInstanceUid: string;
  /** Accepted transfer syntax of the presentation context. */
  transferSyntaxUid: string;
}

export interface StoreOutcome {
  status: number;
  /** Short reason for failures (goes into the response's Error Comment, so no patient data). */
  comment?: string;
  /** Archive path on Success. */
  path?: string;
  identity?: InstanceIdentity;
}

export interface InstanceStoreOptions {
  paths: SitePaths;
  /** Adds the ingest job of an image of the study; must throw (or reject) when the job is not in Redis. */
  enqueue: (job: IngestJob, studyInstanceUid: string) => Promise<void>;
  fsync: boolean;
  log: Logger;
  /** The data file system's free-space floor; without it nothing is refused for space. */
  space?: SpaceGuard;
}

/** Room for the Part-10 preamble and meta in front of a dataset (ours are ~350 bytes). */
const HEADER_BYTES = 1024;

class BadInstance extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let tmpCounter = 0;
const tmpUnique = randomBytes(4).toString("hex");

export class InstanceStore {
  readonly tmpDir: string;
  private readonly knownDirs = new Set<string>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly warnBelowFloor: (fields: Record<string, unknown>) => void;

  constructor(private readonly opts: InstanceStoreOptions) {
    this.tmpDir = path.join(opts.paths.archive, ".tmp");
    this.warnBelowFloor = rateLimitedWarn(
      opts.log,
      "disk-below-floor",
      "free disk space below the floor: C-STOREs refused (Out of Resources)",
    );
  }

  /**
   * Out of Resources when `pendingBytes` more would leave the data file system below its free-space
   * floor, decided before they are written; one rate-limited event for all refusals.
   */
  spaceRefusal(pendingBytes: number): StoreOutcome | undefined {
    const space = this.opts.space;
    if (space === undefined || space.admits(pendingBytes + HEADER_BYTES)) return undefined;
    const now = space.current();
    this.warnBelowFloor({ freeBytes: now?.freeBytes, floorBytes: now?.floorBytes, pendingBytes });
    return { status: STORE_STATUS.OutOfResources, comment: "disk space below the free-space floor" };
  }

  /** Bytes a large dataset just spilled to disk while arriving: counted before the next statfs sees them. */
  spilled(bytes: number): void {
    this.opts.space?.wrote(bytes);
  }

  /**
   * Create the directories and remove the temporary files of writers that are gone (a crashed
   * receiver's partial instances); another host's, and unnamed ones, once unchanged for `graceMs`.
   */
  prepare(graceMs = 10 * 60_000): void {
    fs.mkdirSync(this.tmpDir, { recursive: true });
    fs.mkdirSync(this.opts.paths.quarantineBad, { recursive: true });
    const counts = emptyCounts();
    sweepTempDir(this.tmpDir, { tempOnly: true, graceMs, now: Date.now() }, counts);
    if (counts.removed > 0)
      this.opts.log.info(
        { event: "orphans", dir: "archive/.tmp", removed: counts.removed, bytes: counts.bytes },
        "partial instances of a crashed receiver removed",
      );
  }

  /** A fresh temporary path on the archive filesystem. */
  tmpPath(): string {
    tmpCounter = (tmpCounter + 1) % Number.MAX_SAFE_INTEGER;
    return path.join(this.tmpDir, tempName("instance", `${tmpUnique}${tmpCounter.toString(36)}`));
  }

  /** Part-10 header for this request, or undefined when the command's UIDs cannot go into one. */
  header(req: StoreRequestInfo): Buffer | undefined {
    if (!isPathSafeUid(req.sopInstanceUid)) return undefined;
    try {
      return buildPart10Header({
        sopClassUid: req.sopClassUid,
        sopInstanceUid: req.sopInstanceUid,
        transferSyntaxUid: req.transferSyntaxUid,
        sourceAeTitle: req.callingAe,
      });
    } catch {
      return undefined;
    }
  }

  /** Persist and enqueue one instance; never throws. */
  async store(collector: DatasetCollector, req: StoreRequestInfo): Promise<StoreOutcome> {
    const receivedAt = new Date();
    if (collector.error !== undefined) {
      collector.discard();
      return this.fail(req, STORE_STATUS.OutOfResources, `cannot buffer dataset: ${collector.error.message}`);
    }
    // A spilled dataset is on disk already (and was checked while it arrived).
    const refused = this.spaceRefusal(collector.spill === undefined ? collector.length : 0);
    if (refused !== undefined) {
      collector.discard();
      return refused;
    }

    // 1. bytes and identity
    let file: Buffer | undefined; // a view into the collector's pooled buffer until release()
    let identity: InstanceIdentity;
    try {
      const spill = collector.spill;
      let parsed;
      if (spill !== undefined) {
        collector.closeSpill(this.opts.fsync);
        if (spill.headerLength === 0) {
          throw new BadInstance(STORE_STATUS.CannotUnderstand, "invalid UIDs in command");
        }
        parsed = identifyDataset(spill.head, spill.headerLength, req.transferSyntaxUid, collector.length);
      } else {
        const header = this.header(req);
        if (header === undefined) {
          throw new BadInstance(STORE_STATUS.CannotUnderstand, "invalid UIDs in command");
        }
        file = collector.part10(header);
        parsed = identifyDataset(file, header.length, req.transferSyntaxUid);
      }
      if (!parsed.ok) throw new BadInstance(STORE_STATUS.CannotUnderstand, parsed.reason);
      identity = parsed.identity;
      checkIdentity(identity, req);
    } catch (err) {
      const bad =
        err instanceof BadInstance ? err : new BadInstance(STORE_STATUS.CannotUnderstand, String(err));
      this.quarantine(collector, file, req, bad, receivedAt);
      return this.fail(req, bad.status, bad.message);
    }

    // 2. archive, 3. enqueue
    const studyUid = identity.studyInstanceUid as string;
    const dir = this.opts.paths.archiveStudyDir(studyUid);
    const finalPath = path.join(dir, `${fileModality(identity.modality)}.${req.sopInstanceUid}`);
    const release = await this.lock(finalPath);
    let tmp: string | undefined = collector.spill?.path;
    let backup: string | undefined;
    let placed = false;
    const enqueue = () =>
      this.opts.enqueue(
        {
          path: path.resolve(finalPath),
          callingAe: req.callingAe,
          calledAe: req.calledAe,
          peer: req.peer,
          receivedAt: receivedAt.toISOString(),
        },
        studyUid,
      );
    // A new instance: the Redis round trip runs while the file is written (ingest waits briefly for
    // a file that is not there yet). A replaced one is enqueued only once its new bytes are in place.
    let enqueued: Promise<void> | undefined;
    try {
      const replacing = fs.existsSync(finalPath);
      if (!replacing) (enqueued = enqueue()).catch(() => {}); // awaited below
      if (file !== undefined) {
        tmp = this.tmpPath();
        this.writeTemp(tmp, file);
        file = undefined;
        collector.release();
      }
      this.ensureDir(dir);
      if (replacing) {
        backup = this.tmpPath();
        try {
          fs.linkSync(finalPath, backup);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
          backup = undefined;
        }
      }
      this.renameInto(tmp as string, finalPath, dir);
      tmp = undefined;
      placed = true;
      if (this.opts.fsync) fsyncDir(dir);
      await (enqueued ?? enqueue());
      if (backup !== undefined) fs.rmSync(backup, { force: true });
      if (collector.spill === undefined) this.opts.space?.wrote(collector.length + HEADER_BYTES);
      return { status: STORE_STATUS.Success, path: finalPath, identity };
    } catch (err) {
      await enqueued?.catch(() => {}); // a job for a file that is not archived: ingest skips it
      const message = err instanceof Error ? err.message : String(err);
      this.undo(tmp, placed ? finalPath : undefined, backup);
      return this.fail(req, STORE_STATUS.OutOfResources, `cannot archive or enqueue: ${message}`, identity);
    } finally {
      collector.discard(); // frees the buffer if a write failed early; the spill file was renamed or undone
      release();
    }
  }

  private writeTemp(tmp: string, bytes: Buffer): void {
    try {
      fs.writeFileSync(tmp, bytes, { mode: 0o640, flush: this.opts.fsync });
    } catch (err) {
      // The temporary directory may have been removed by a cleanup: recreate it once.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      fs.mkdirSync(this.tmpDir, { recursive: true });
      fs.writeFileSync(tmp, bytes, { mode: 0o640, flush: this.opts.fsync });
    }
  }

  private renameInto(from: string, to: string, dir: string): void {
    try {
      fs.renameSync(from, to);
    } catch (err) {
      // The study directory may have been removed by a cleanup since we last created it.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || !fs.existsSync(from)) throw err;
      this.knownDirs.delete(dir);
      this.ensureDir(dir);
      fs.renameSync(from, to);
    }
  }

  /** Put the archive back as it was: remove our temp file and our placed file, restore an earlier copy. */
  private undo(tmp: string | undefined, placed: string | undefined, backup: string | undefined): void {
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        this.opts.log.error(
          { event: "store-undo-failed", what, err: (err as Error).message },
          "cannot undo store",
        );
      }
    };
    if (tmp !== undefined) attempt("remove-temp", () => fs.rmSync(tmp, { force: true }));
    if (placed !== undefined) {
      if (backup !== undefined) attempt("restore-previous", () => fs.renameSync(backup, placed));
      else attempt("remove-archived", () => fs.rmSync(placed, { force: true }));
    } else if (backup !== undefined) {
      attempt("remove-backup", () => fs.rmSync(backup, { force: true }));
    }
  }

  private ensureDir(dir: string): void {
    if (this.knownDirs.has(dir)) return;
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    if (this.knownDirs.size > 10_000) this.knownDirs.clear();
    this.knownDirs.add(dir);
  }

  /** Serialise operations on one archive path; resolves with the release function. */
  private async lock(key: string): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const prev = this.locks.get(key);
    const tail = prev === undefined ? mine : prev.then(() => mine);
    this.locks.set(key, tail);
    if (prev !== undefined) await prev;
    return () => {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    };
  }

  private quarantine(
    collector: DatasetCollector,
    file: Buffer | undefined,
    req: StoreRequestInfo,
    bad: BadInstance,
    receivedAt: Date,
  ): void {
    const stamp = receivedAt.toISOString().replace(/[-:]/g, "").replace(".", "_");
    const base = path.join(this.opts.paths.quarantineBad, `${stamp}_${randomBytes(6).toString("hex")}`);
    let format: "part10" | "raw-dataset" = "part10";
    try {
      fs.mkdirSync(this.opts.paths.quarantineBad, { recursive: true });
      if (collector.spill !== undefined) {
        collector.closeSpill();
        fs.renameSync(collector.spill.path, `${base}.dcm`);
        if (collector.spill.headerLength === 0) format = "raw-dataset";
      } else if (file !== undefined) {
        fs.writeFileSync(`${base}.dcm`, file, { mode: 0o640 });
      } else {
        format = "raw-dataset";
        fs.writeFileSync(`${base}.dcm`, collector.dataset(), { mode: 0o640 });
      }
      const sidecar = {
        reason: bad.message,
        status: `0x${bad.status.toString(16).toUpperCase().padStart(4, "0")}`,
        format,
        callingAe: req.callingAe,
        calledAe: req.calledAe,
        peer: req.peer,
        receivedAt: receivedAt.toISOString(),
        commandSopClassUid: req.sopClassUid,
        commandSopInstanceUid: req.sopInstanceUid,
        transferSyntaxUid: req.transferSyntaxUid,
        bytes: collector.length,
      };
      fs.writeFileSync(`${base}.json`, `${JSON.stringify(sidecar, null, 2)}\n`, { mode: 0o640 });
    } catch (err) {
      this.opts.log.error(
        { event: "quarantine-failed", err: (err as Error).message, callingAe: req.callingAe },
        "cannot keep a bad instance in quarantine-bad",
      );
      collector.discard();
    } finally {
      collector.release();
    }
  }

  private fail(
    req: StoreRequestInfo,
    status: number,
    reason: string,
    identity?: InstanceIdentity,
  ): StoreOutcome {
    this.opts.log.warn(
      {
        event: "store-failed",
        status: `0x${status.toString(16).toUpperCase().padStart(4, "0")}`,
        reason,
        callingAe: req.callingAe,
        calledAe: req.calledAe,
        peer: req.peer,
        sopClassUid: req.sopClassUid,
        sopInstanceUid: req.sopInstanceUid,
        studyInstanceUid: identity?.studyInstanceUid,
      },
      "C-STORE failed",
    );
    // Error Comment is LO: at most 64 characters.
    return { status, comment: reason.slice(0, 64), identity };
  }
}

function checkIdentity(id: InstanceIdentity, req: StoreRequestInfo): void {
  const { CannotUnderstand, DataSetDoesNotMatchSopClass } = STORE_STATUS;
  if (id.sopInstanceUid === undefined) throw new BadInstance(CannotUnderstand, "SOPInstanceUID missing");
  if (id.sopClassUid === undefined) throw new BadInstance(CannotUnderstand, "SOPClassUID missing");
  if (id.sopInstanceUid !== req.sopInstanceUid) {
    throw new BadInstance(DataSetDoesNotMatchSopClass, "SOPInstanceUID differs from the command");
  }
  if (id.sopClassUid !== req.sopClassUid) {
    throw new BadInstance(DataSetDoesNotMatchSopClass, "SOPClassUID differs from the command");
  }
  if (id.studyInstanceUid === undefined) throw new BadInstance(CannotUnderstand, "StudyInstanceUID missing");
  if (!isPathSafeUid(id.studyInstanceUid))
    throw new BadInstance(CannotUnderstand, "StudyInstanceUID invalid");
  if (id.seriesInstanceUid !== undefined && !isPathSafeUid(id.seriesInstanceUid)) {
    throw new BadInstance(CannotUnderstand, "SeriesInstanceUID invalid");
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
