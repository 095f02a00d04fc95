import { describe, expect, it } from "vitest";
import {
  aperioOptics,
  baseSpacingMm,
  classifyImages,
  levelSpacingMm,
  FALLBACK_SPACING_MM,
} from "../../src/wsi/levels.js";
import type { TiffImage } from "../../src/wsi/tiff.js";

function image(index: number, o: Partial<TiffImage> & { width: number; height: number }): TiffImage {
  return {
    index,
    label: `IFD ${index}`,
    topLevelIndex: index,
    tiled: true,
    tileWidth: 256,
    tileHeight: 256,
    offsets: [],
    byteCounts: [],
    compression: 7,
    photometric: 6,
    samplesPerPixel: 3,
    bitsPerSample: [8, 8, 8],
    planarConfiguration: 1,
    predictor: 1,
    newSubfileType: 0,
    resolutionUnit: 2,
    ...o,
  };
}

describe("classifyImages", () => {
  it("finds the Aperio layout: levels, the IFD 1 thumbnail, label (NewSubfileType 1) and macro (9)", () => {
    const layout = classifyImages([
      image(0, { width: 46000, height: 32914 }),
      image(1, { width: 1024, height: 732, tiled: false }),
      image(2, { width: 11500, height: 8228 }),
      image(3, { width: 2875, height: 2057 }),
      image(4, { width: 387, height: 463, tiled: false, newSubfileType: 1 }),
      image(5, { width: 1280, height: 431, tiled: false, newSubfileType: 9 }),
    ]);
    expect(layout.levels.map((l) => l.index)).toEqual([0, 2, 3]);
    expect(layout.thumbnail?.index).toBe(1);
    expect(layout.dropped).toEqual([
      { ifd: 4, kind: "label" },
      { ifd: 5, kind: "macro" },
    ]);
  });

  it("recognises older label and macro by the description's second line", () => {
    const layout = classifyImages([
      image(0, { width: 4000, height: 3000 }),
      image(1, {
        width: 1024,
        height: 768,
        tiled: false,
        description: "Aperio Image Library\r\n4000x3000 -> 1024x768 - |",
      }),
      image(2, {
        width: 387,
        height: 463,
        tiled: false,
        description: "Aperio Image Library v10\nlabel 387x463",
      }),
      image(3, {
        width: 1280,
        height: 431,
        tiled: false,
        description: "Aperio Image Library v10\nmacro 1280x431",
      }),
    ]);
    expect(layout.thumbnail?.index).toBe(1);
    expect(layout.dropped.map((d) => d.kind)).toEqual(["label", "macro"]);
  });

  it("takes vips levels (reduced-resolution bit on lower levels, in any order) and drops odd images", () => {
    const layout = classifyImages([
      image(0, { width: 3000, height: 2200 }),
      image(1, { width: 750, height: 550, newSubfileType: 1 }),
      image(2, { width: 1500, height: 1100, newSubfileType: 1, parent: 0 }),
      image(3, { width: 187, height: 137, newSubfileType: 1 }),
      image(4, { width: 3000, height: 2200, newSubfileType: 4 }),
      image(5, { width: 500, height: 100 }),
      image(6, { width: 1500, height: 1100 }),
      image(7, { width: 64, height: 64, tiled: false }),
    ]);
    expect(layout.levels.map((l) => l.index)).toEqual([0, 2, 1, 3]);
    expect(layout.thumbnail).toBeUndefined();
    expect(layout.dropped).toEqual([
      { ifd: 4, kind: "unknown" },
      { ifd: 5, kind: "unknown" },
      { ifd: 6, kind: "unknown" },
      { ifd: 7, kind: "unknown" },
    ]);
  });

  it("finds no level in a file without tiled images", () => {
    expect(classifyImages([image(0, { width: 100, height: 100, tiled: false })]).levels).toEqual([]);
  });
});

describe("pixel spacing and optics", () => {
  const identity =
    "Filename = CASE-123|Title = Jane Doe|User = 1234-abcd|Barcode = 998877|ScanScope ID = SS1283";

  it("reads only MPP and AppMag from an Aperio description (decimal comma too)", () => {
    expect(
      aperioOptics(`Aperio Image Library v11\r\n46000x32914|AppMag = 20|MPP = 0,4990|${identity}`),
    ).toEqual({
      mpp: 0.499,
      objectivePower: 20,
    });
    expect(aperioOptics(`Generic|MPP = 0.25`)).toEqual({});
    expect(aperioOptics(undefined)).toEqual({});
  });

  it("prefers MPP, else resolution in inch or cm, else a non-zero fallback", () => {
    expect(baseSpacingMm(image(0, { width: 10, height: 10, description: "Aperio x|MPP = 0.25" }))).toEqual({
      rows: 0.00025,
      columns: 0.00025,
      source: "mpp",
    });
    const cm = baseSpacingMm(
      image(0, { width: 10, height: 10, xResolution: 40000, yResolution: 20000, resolutionUnit: 3 }),
    );
    expect(cm).toEqual({ rows: 0.0005, columns: 0.00025, source: "resolution" });
    const inch = baseSpacingMm(image(0, { width: 10, height: 10, xResolution: 25400, resolutionUnit: 2 }));
    expect(inch.columns).toBeCloseTo(0.001, 12);
    expect(baseSpacingMm(image(0, { width: 10, height: 10, xResolution: 5, resolutionUnit: 1 })).source).toBe(
      "fallback",
    );
    expect(baseSpacingMm(image(0, { width: 10, height: 10 })).rows).toBe(FALLBACK_SPACING_MM);
  });

  it("scales lower levels from level 0 by size, ignoring their own XResolution", () => {
    const l0 = image(0, { width: 3000, height: 2200, xResolution: 4000, resolutionUnit: 3 });
    const l3 = image(3, { width: 375, height: 275, xResolution: 4000, resolutionUnit: 3 });
    const s = levelSpacingMm(l0, l3);
    expect(s.columns).toBeCloseTo(0.0025 * 8, 12);
    expect(s.rows).toBeCloseTo(0.0025 * 8, 12);
  });
});
