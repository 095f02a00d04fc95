/**
 * Which IFDs of a slide TIFF are pyramid levels, and which are thumbnail, label or macro (pure).
 * Aperio: IFD 1 stripped = thumbnail; stripped NewSubfileType 1 = label, 9 = macro, or the description's
 * second line says "label"/"macro". vips: every level is tiled, lower levels carry the reduced-resolution
 * bit. Of the Aperio description only MPP and AppMag are read; the rest (Filename, Title, User, Barcode,
 * Date, ScanScope ID …) can identify a person and is never copied anywhere.
 */
import type { TiffImage } from "./tiff.js";

export type DroppedKind = "label" | "macro" | "thumbnail" | "unknown";

export interface SlideLayout {
  /** Pyramid levels, largest first. */
  levels: TiffImage[];
  thumbnail?: TiffImage;
  dropped: Array<{ ifd: number; kind: DroppedKind }>;
}

/** Aspect ratios of levels of one pyramid agree within this (floor-halving moves them a little). */
const ASPECT_TOLERANCE = 0.02;

function secondLine(description: string | undefined): string {
  return (description?.split(/\r?\n/)[1] ?? "").trim().toLowerCase();
}

function strippedKind(image: TiffImage): DroppedKind {
  const line = secondLine(image.description);
  if (image.newSubfileType === 9 || line.startsWith("macro")) return "macro";
  if (image.newSubfileType === 1 || line.startsWith("label")) return "label";
  if (image.topLevelIndex === 1) return "thumbnail";
  return "unknown";
}

/** Sort the images of a slide into levels, the thumbnail and what is dropped. */
export function classifyImages(images: TiffImage[]): SlideLayout {
  const dropped: SlideLayout["dropped"] = [];
  let thumbnail: TiffImage | undefined;
  const tiled: TiffImage[] = [];
  for (const image of images) {
    // Masks (NewSubfileType bit 2) and multi-page files' extra pages are not pyramid levels.
    if (image.tiled && (image.newSubfileType & ~1) === 0) tiled.push(image);
    else if (image.tiled) dropped.push({ ifd: image.index, kind: "unknown" });
    else {
      const kind = strippedKind(image);
      if (kind === "thumbnail" && thumbnail === undefined) thumbnail = image;
      else dropped.push({ ifd: image.index, kind });
    }
  }
  const base = tiled.reduce<TiffImage | undefined>(
    (a, b) => (a && a.width * a.height >= b.width * b.height ? a : b),
    undefined,
  );
  const levels: TiffImage[] = [];
  if (base) {
    const aspect = base.width / base.height;
    const sorted = [...tiled].sort((a, b) => b.width - a.width || a.index - b.index);
    for (const image of sorted) {
      const sameAspect =
        Math.abs(image.width / image.height / aspect - 1) <=
        ASPECT_TOLERANCE + 1 / Math.min(image.width, image.height);
      const duplicate = levels.some((l) => l.width === image.width && l.height === image.height);
      if (sameAspect && !duplicate) levels.push(image);
      else dropped.push({ ifd: image.index, kind: "unknown" });
    }
  }
  dropped.sort((a, b) => a.ifd - b.ifd);
  return { levels, ...(thumbnail ? { thumbnail } : {}), dropped };
}

/** Values of the Aperio description that describe the optics, nothing else. */
export interface AperioOptics {
  /** µm per pixel at level 0. */
  mpp?: number;
  objectivePower?: number;
}

/** MPP and AppMag from an Aperio ImageDescription ("Aperio …|AppMag = 20|MPP = 0.4990|…"). */
export function aperioOptics(description: string | undefined): AperioOptics {
  if (!description?.startsWith("Aperio")) return {};
  const out: AperioOptics = {};
  for (const item of description.split("|").slice(1)) {
    const eq = item.indexOf("=");
    if (eq < 0) continue;
    const key = item.slice(0, eq).trim();
    const value = Number(
      item
        .slice(eq + 1)
        .trim()
        .replace(",", "."),
    );
    if (!Number.isFinite(value) || value <= 0) continue;
    if (key === "MPP") out.mpp = value;
    else if (key === "AppMag") out.objectivePower = value;
  }
  return out;
}

/** Used when a file gives no resolution at all: 0.25 µm/pixel, a typical 40x scan. */
export const FALLBACK_SPACING_MM = 0.00025;

/**
 * Pixel spacing of level 0 in mm, [row spacing, column spacing]: the Aperio MPP, else X/YResolution with
 * ResolutionUnit (inch or cm), else a 0.25 µm fallback (DICOM needs a non-zero value).
 */
export function baseSpacingMm(level0: TiffImage): {
  rows: number;
  columns: number;
  source: "mpp" | "resolution" | "fallback";
} {
  const { mpp } = aperioOptics(level0.description);
  if (mpp !== undefined) return { rows: mpp / 1000, columns: mpp / 1000, source: "mpp" };
  const mmPerUnit = level0.resolutionUnit === 2 ? 25.4 : level0.resolutionUnit === 3 ? 10 : undefined;
  if (mmPerUnit !== undefined && level0.xResolution !== undefined) {
    const columns = mmPerUnit / level0.xResolution;
    const rows = mmPerUnit / (level0.yResolution ?? level0.xResolution);
    return { rows, columns, source: "resolution" };
  }
  return { rows: FALLBACK_SPACING_MM, columns: FALLBACK_SPACING_MM, source: "fallback" };
}

/** Spacing of a level, scaled from level 0 by the size ratio (never from the level's own XResolution). */
export function levelSpacingMm(level0: TiffImage, level: TiffImage): { rows: number; columns: number } {
  const base = baseSpacingMm(level0);
  return {
    rows: (base.rows * level0.height) / level.height,
    columns: (base.columns * level0.width) / level.width,
  };
}
