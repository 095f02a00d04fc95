/**
 * Whole-slide TIFF / SVS → DICOM VL Whole Slide Microscopy, one instance per pyramid level, off the
 * event loop: each conversion runs in its own worker thread (convert-worker), so a multi-GB slide never
 * stalls job locks or the receiver. WsiInputError crosses the thread boundary as WsiInputError.
 */
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Worker } from "node:worker_threads";
import { startThread } from "../util/thread.js";
import { WsiInputError } from "./errors.js";

export { WsiInputError };

/** Patient/study/series/specimen attributes of the output, already pseudonymized by the caller. */
export interface SlideDataset {
  /** E.g. "PROJ_0001^" (the participant pseudonym, FAMILY^GIVEN form). */
  patientName: string;
  /** The participant pseudonym. */
  patientId: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid?: string;
  /** DICOM DA / TM. */
  studyId: string;
  studyDate: string;
  studyTime: string;
  accessionNumber?: string;
  studyDescription?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  /** The project name (the research PACS keeps it in InstitutionName). */
  institutionName?: string;
  /** FIONA puts "EventName:<event>" here. */
  referringPhysicianName?: string;
  /** Slide id. */
  containerIdentifier: string;
  specimenIdentifier: string;
  specimenUid: string;
  specimenDescription?: string;
  /** Free text, used in the specimen description. */
  stain?: string;
  /** Extra pathology metadata (block, biopsy, department …) as short text, for descriptions only. */
  pathology?: Record<string, string>;
}

export interface ConvertProgress {
  level: number;
  levels: number;
  framesDone: number;
  framesTotal: number;
}

export interface ConvertOptions {
  keepThumbnail?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertedInstance {
  path: string;
  sopInstanceUid: string;
  level: number;
  imageType: "VOLUME" | "THUMBNAIL";
  totalColumns: number;
  totalRows: number;
  tileWidth: number;
  tileHeight: number;
  frames: number;
  transferSyntaxUid: string;
  reencoded: boolean;
}

export interface ConvertResult {
  instances: ConvertedInstance[];
  dropped: Array<{ ifd: number; kind: "label" | "macro" | "thumbnail" | "unknown" }>;
}

/** Messages from the worker. */
export type WorkerReply =
  | { type: "progress"; progress: ConvertProgress }
  | { type: "done"; result: ConvertResult }
  | { type: "error"; name: string; message: string; code?: string | undefined };

export interface WorkerTask {
  input: string;
  outDir: string;
  dataset: SlideDataset;
  keepThumbnail: boolean;
}

function startWorker(task: WorkerTask): Worker {
  return startThread(import.meta.url, "convert-worker", { workerData: task });
}

/** Remove partial files a terminated worker left behind. */
async function removePartials(outDir: string): Promise<void> {
  const names = await readdir(outDir).catch(() => [] as string[]);
  await Promise.all(
    names.filter((n) => n.endsWith(".partial")).map((n) => rm(path.join(outDir, n), { force: true })),
  );
}

/** Convert in a worker thread (off the event loop). Writes Part-10 files into outDir (created), atomically. */
export async function convertSlide(
  input: string,
  outDir: string,
  dataset: SlideDataset,
  opts: ConvertOptions = {},
): Promise<ConvertResult> {
  opts.signal?.throwIfAborted();
  const worker = startWorker({ input, outDir, dataset, keepThumbnail: opts.keepThumbnail ?? false });
  return new Promise<ConvertResult>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener("abort", onAbort);
      fn();
    };
    let aborting = false;
    const onAbort = () => {
      aborting = true;
      const reason: unknown = opts.signal?.reason;
      void worker
        .terminate()
        .then(() => removePartials(outDir))
        .finally(() =>
          finish(() => reject(reason instanceof Error ? reason : new Error("conversion aborted"))),
        );
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    worker.on("message", (msg: WorkerReply) => {
      if (msg.type === "progress") opts.onProgress?.(msg.progress);
      else if (msg.type === "done") finish(() => resolve(msg.result));
      else {
        const err =
          msg.name === "WsiInputError"
            ? new WsiInputError(msg.message)
            : Object.assign(new Error(msg.message), { code: msg.code }); // ENOSPC stays recognisable
        finish(() => reject(err));
      }
    });
    worker.on("error", (e) => finish(() => reject(e)));
    worker.on("exit", (code) => {
      if (aborting) return;
      if (code !== 0) void removePartials(outDir);
      finish(() => reject(new Error(`slide converter thread exited with code ${code}`)));
    });
  });
}
