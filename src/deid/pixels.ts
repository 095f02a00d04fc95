/**
 * Project features that decide about whole instances: dropping presentation states and burned-in
 * series, and blanking configured pixel rectangles in uncompressed pixel data.
 */
import { DeidRefusedError } from "./errors.js";
import type { PixelRectangles, ProjectDeid } from "./project.js";

/** Presentation state storage SOP classes. */
const PRESENTATION_STATE_PREFIX = "1.2.840.10008.5.1.4.1.1.11.";

/** Header facts the drop/clean decisions need (all optional; missing means unknown). */
export interface DropInfo {
  sopClassUid?: string;
  /** BurnedInAnnotation (0028,0301). */
  burnedInAnnotation?: string;
  /** The series' ClassifyType list (classification rules), e.g. ["CHECKBURNEDINFO"]. */
  classifyTypes?: readonly string[];
  manufacturer?: string;
  manufacturerModelName?: string;
  rows?: number;
  columns?: number;
}

export type Rectangle = PixelRectangles["rectangles"][number];

function contains(haystack: string | undefined, needle: string | undefined): boolean {
  if (needle === undefined || needle === "") return true;
  return (haystack ?? "").toLowerCase().includes(needle.toLowerCase());
}

/** Rectangles of the first signature that matches the header, or undefined. */
export function matchRectangles(
  info: DropInfo,
  project: Pick<ProjectDeid, "features">,
): readonly Rectangle[] | undefined {
  for (const sig of project.features.pixelRectangles) {
    if (!contains(info.manufacturer, sig.manufacturer)) continue;
    if (!contains(info.manufacturerModelName, sig.model)) continue;
    if (sig.rows !== undefined && sig.rows !== info.rows) continue;
    if (sig.columns !== undefined && sig.columns !== info.columns) continue;
    return sig.rectangles;
  }
  return undefined;
}

/** True when the series or instance is flagged as carrying burned-in text. */
function isBurnedIn(info: DropInfo): boolean {
  return (
    (info.classifyTypes?.includes("CHECKBURNEDINFO") ?? false) ||
    (info.burnedInAnnotation ?? "").trim().toUpperCase() === "YES"
  );
}

/**
 * Why an instance must not be sent for this project, or undefined. Order: presentation states (when
 * the project drops them), then burned-in instances with burnedIn "drop", then burned-in instances with
 * burnedIn "clean" that no pixel-rectangle signature covers.
 */
export function dropReason(info: DropInfo, project: Pick<ProjectDeid, "features">): string | undefined {
  const f = project.features;
  if (f.dropPresentationStates && (info.sopClassUid ?? "").startsWith(PRESENTATION_STATE_PREFIX)) {
    return "presentation state (project drops presentation states)";
  }
  if (!isBurnedIn(info)) return undefined;
  if (f.burnedIn === "drop") return "burned-in annotation (project drops burned-in series)";
  if (f.burnedIn === "clean" && matchRectangles(info, project) === undefined) {
    return (
      `burned-in annotation and no pixel rectangles configured for ` +
      `${info.manufacturer ?? "?"} / ${info.manufacturerModelName ?? "?"} / ${info.rows ?? "?"}x${info.columns ?? "?"}`
    );
  }
  return undefined;
}

export interface PixelGeometry {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  /** 0 = interleaved (R1G1B1R2…), 1 = planes (R…G…B…). */
  planarConfiguration: number;
  frames: number;
}

/**
 * Fill the rectangles with 0 in every frame of native pixel data (modified in place). Rectangles are
 * clipped to the image. Throws DeidRefusedError for bit depths other than 8/16/32 or when the data is
 * shorter than the geometry says.
 */
export function blankRectangles(data: Buffer, g: PixelGeometry, rects: readonly Rectangle[]): void {
  if (g.bitsAllocated !== 8 && g.bitsAllocated !== 16 && g.bitsAllocated !== 32) {
    throw new DeidRefusedError(`pixel cleaning supports 8, 16 or 32 bits allocated, not ${g.bitsAllocated}`);
  }
  const bps = g.bitsAllocated / 8;
  const spp = Math.max(1, g.samplesPerPixel);
  const frames = Math.max(1, g.frames);
  const frameSize = g.rows * g.columns * spp * bps;
  if (g.rows < 1 || g.columns < 1 || frameSize * frames > data.length) {
    throw new DeidRefusedError("pixel data is shorter than Rows x Columns x SamplesPerPixel x frames");
  }
  for (let f = 0; f < frames; f++) {
    const frameStart = f * frameSize;
    for (const r of rects) {
      const x0 = Math.min(r.x, g.columns);
      const x1 = Math.min(r.x + r.width, g.columns);
      const y0 = Math.min(r.y, g.rows);
      const y1 = Math.min(r.y + r.height, g.rows);
      if (x1 <= x0 || y1 <= y0) continue;
      if (g.planarConfiguration === 1 && spp > 1) {
        const planeSize = g.rows * g.columns * bps;
        for (let s = 0; s < spp; s++) {
          const plane = frameStart + s * planeSize;
          for (let y = y0; y < y1; y++) {
            const row = plane + y * g.columns * bps;
            data.fill(0, row + x0 * bps, row + x1 * bps);
          }
        }
      } else {
        const pixel = spp * bps;
        for (let y = y0; y < y1; y++) {
          const row = frameStart + y * g.columns * pixel;
          data.fill(0, row + x0 * pixel, row + x1 * pixel);
        }
      }
    }
  }
}
