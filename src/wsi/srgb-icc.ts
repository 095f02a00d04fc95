/**
 * A small ICC v2 display profile for sRGB (D50-adapted primaries, the IEC 61966-2.1 tone curve as a
 * 1024-entry table), for slides whose TIFF carries no ICC profile: the Optical Path needs one for colour.
 * Generated rather than shipped because the machine has no profile files to copy.
 */
const CURVE_POINTS = 1024;

function s15f16(x: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(Math.round(x * 65536), 0);
  return b;
}

function xyz(x: number, y: number, z: number): Buffer {
  return Buffer.concat([Buffer.from("XYZ \0\0\0\0", "latin1"), s15f16(x), s15f16(y), s15f16(z)]);
}

function text(value: string): Buffer {
  return Buffer.concat([Buffer.from("text\0\0\0\0", "latin1"), Buffer.from(`${value}\0`, "latin1")]);
}

function desc(value: string): Buffer {
  const ascii = Buffer.from(`${value}\0`, "latin1");
  const count = Buffer.alloc(4);
  count.writeUInt32BE(ascii.length, 0);
  // ASCII part, then an empty Unicode part (language code, count) and an empty ScriptCode part (2 + 1 + 67).
  return Buffer.concat([
    Buffer.from("desc\0\0\0\0", "latin1"),
    count,
    ascii,
    Buffer.alloc(8),
    Buffer.alloc(70),
  ]);
}

function srgbCurve(): Buffer {
  const b = Buffer.alloc(12 + CURVE_POINTS * 2);
  b.write("curv", 0, "latin1");
  b.writeUInt32BE(CURVE_POINTS, 8);
  for (let i = 0; i < CURVE_POINTS; i++) {
    const v = i / (CURVE_POINTS - 1);
    const linear = v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    b.writeUInt16BE(Math.round(linear * 65535), 12 + i * 2);
  }
  return b;
}

function build(): Buffer {
  const curve = srgbCurve();
  const tags: Array<[string, Buffer]> = [
    ["desc", desc("sRGB IEC61966-2.1 (FIONA)")],
    ["cprt", text("No copyright, use freely")],
    ["wtpt", xyz(0.9642, 1.0, 0.8249)],
    ["rXYZ", xyz(0.4361, 0.2225, 0.0139)],
    ["gXYZ", xyz(0.3851, 0.7169, 0.0971)],
    ["bXYZ", xyz(0.1431, 0.0606, 0.7141)],
    ["rTRC", curve],
    ["gTRC", curve],
    ["bTRC", curve],
  ];
  const table = Buffer.alloc(4 + tags.length * 12);
  table.writeUInt32BE(tags.length, 0);
  const data: Buffer[] = [];
  let offset = 128 + table.length;
  const placed = new Map<Buffer, number>();
  tags.forEach(([sig, value], i) => {
    let at = placed.get(value);
    if (at === undefined) {
      at = offset;
      placed.set(value, at);
      const padded = Buffer.concat([value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
      data.push(padded);
      offset += padded.length;
    }
    table.write(sig, 4 + i * 12, "latin1");
    table.writeUInt32BE(at, 8 + i * 12);
    table.writeUInt32BE(value.length, 12 + i * 12);
  });
  const header = Buffer.alloc(128);
  header.writeUInt32BE(offset, 0);
  header.writeUInt32BE(0x02100000, 8);
  header.write("mntrRGB XYZ ", 12, "latin1");
  [2026, 1, 1, 0, 0, 0].forEach((v, i) => header.writeUInt16BE(v, 24 + i * 2));
  header.write("acsp", 36, "latin1");
  s15f16(0.9642).copy(header, 68);
  s15f16(1.0).copy(header, 72);
  s15f16(0.8249).copy(header, 76);
  return Buffer.concat([header, table, ...data]);
}

/** The profile bytes (built once). */
export const SRGB_ICC: Buffer = build();
