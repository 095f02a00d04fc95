/**
 * The de-identifying walk over a data set at byte level: elements are kept (copied as slices of the
 * input), dropped, or given new values (see values.ts); sequences with a change inside are re-emitted
 * with recomputed lengths; elements the profile creates are inserted in tag order at the top level.
 */
import { entryForTag } from "../dicom/dictionary.js";
import {
  Header,
  ITEM,
  ITEM_DELIMITER,
  PIXEL_DATA,
  SEQUENCE_DELIMITER,
  UNDEFINED_LENGTH,
  VR,
  elementBytes,
  headerSize,
  innerSyntax,
  itemHeader,
  readHeader,
  skipUndefined,
  vrCode,
  writeHeader,
  type Syntax,
} from "./bytes.js";
import { DeidParseError } from "./errors.js";
import { Out } from "./output.js";
import { blankRectangles, type PixelGeometry, type Rectangle } from "./pixels.js";
import { A, L, METHOD_CODES, TYPE2_BY_SOP_CLASS, type CompiledProfile, type Rule } from "./profile.js";
import type { TopLevelScan } from "./scan.js";
import { EMPTY, TAG_STUDY_UID, type ElementValues } from "./values.js";
import { normalizeUid, normalizeUid as trimText } from "./uid.js";

export const TAG_SOP_CLASS = 0x00080016;
export const TAG_BURNED_IN = 0x00280301;
const TAG_SOP_INSTANCE = 0x00080018;
const TAG_SERIES_UID = 0x0020000e;
const TAG_METHOD_CODES = 0x00120064;

const EMPTY_RULE: Rule = { act: A.EMPTY, lit: L.FIXED, text: "", cim: false };
const NO_CREATE: CompiledProfile["create"] = [];
const methodCodesCache = new WeakMap<CompiledProfile, Map<string, Buffer>>();

export class Walk {
  readonly h = new Header();
  readonly end: number;
  /** Attributes that are Type 2 in this instance's IOD beyond the profile's common list. */
  readonly type2: ReadonlySet<number> | undefined;
  cleanRects: readonly Rectangle[] | undefined;
  geometry: PixelGeometry | undefined;
  pixelsCleaned = false;
  /** Final top-level values of the three instance UIDs (as written). */
  newSop = "";
  newSeries = "";
  newStudy = "";

  constructor(
    readonly buf: Buffer,
    scan: TopLevelScan,
    private readonly values: ElementValues,
  ) {
    this.end = buf.length;
    const sopClass = scan.text(TAG_SOP_CLASS) ?? "";
    this.type2 = TYPE2_BY_SOP_CLASS.find(([prefix]) => sopClass.startsWith(prefix))?.[1];
  }

  private emit(out: Out, tag: number, headerVr: number, value: Buffer, syn: Syntax): void {
    out.push(elementBytes(tag, headerVr, value, syn));
  }

  /** DeidentificationMethodCodeSequence with the codes that apply to this file (memoised per profile). */
  private methodCodes(syn: Syntax): Buffer {
    const key = `${syn.explicit ? "E" : "I"}${syn.little ? "L" : "B"}${this.cleanRects ? "C" : ""}${this.values.utf8 ? "U" : ""}`;
    const { profile } = this.values;
    let cache = methodCodesCache.get(profile);
    if (!cache) methodCodesCache.set(profile, (cache = new Map()));
    let bytes = cache.get(key);
    if (!bytes) cache.set(key, (bytes = this.buildMethodCodes(syn)));
    return bytes;
  }

  private buildMethodCodes(syn: Syntax): Buffer {
    const codes = [...this.values.profile.codes];
    if (this.cleanRects) codes.splice(1, 0, "113101"); // decided before the walk; PixelData comes last
    const items: Buffer[] = [];
    for (const code of codes) {
      const content = Buffer.concat([
        elementBytes(0x00080100, VR.SH, this.values.encode(code, VR.SH), syn),
        elementBytes(0x00080102, VR.SH, this.values.encode("DCM", VR.SH), syn),
        elementBytes(0x00080104, VR.LO, this.values.encode(METHOD_CODES[code] ?? code, VR.LO), syn),
      ]);
      items.push(itemHeader(ITEM, content.length, syn), content);
    }
    return elementBytes(TAG_METHOD_CODES, VR.SQ, Buffer.concat(items), syn);
  }

  /** A missing element the profile creates (top level). */
  private create(out: Out, tag: number, vr: number, rule: Rule, syn: Syntax): void {
    const r = rule.noEvent && this.values.event === undefined ? rule.noEvent : rule;
    if (r.act === A.REMOVE) return;
    if (r.act === A.METHOD_CODES) {
      out.push(this.methodCodes(syn));
      return;
    }
    if (vr === VR.SQ) {
      this.emit(out, tag, vr, EMPTY, syn);
      return;
    }
    const value = r.act === A.LITERAL ? this.values.encode(this.values.literal(r), vr) : EMPTY;
    this.emit(out, tag, vr, value, syn);
  }

  private effectiveVr(tag: number, fileVr: number): number {
    if (fileVr !== 0 && fileVr !== VR.UN) return fileVr;
    if (((tag >>> 16) & 1) === 1) return fileVr;
    const known = entryForTag(tag)?.vr;
    return known === undefined ? fileVr : vrCode(known);
  }

  /** Where an element whose value starts at `valueOffset` ends (after its delimiter for undefined length). */
  private elementEnd(valueOffset: number, length: number, inner: Syntax): number {
    return length === UNDEFINED_LENGTH
      ? skipUndefined(this.buf, valueOffset, this.end, inner, this.h)
      : valueOffset + length;
  }

  private looksLikeSequence(offset: number, length: number, syn: Syntax): boolean {
    if (length < 8) return false;
    const b = this.buf;
    const tag = syn.little
      ? ((b.readUInt16LE(offset) << 16) | b.readUInt16LE(offset + 2)) >>> 0
      : ((b.readUInt16BE(offset) << 16) | b.readUInt16BE(offset + 2)) >>> 0;
    if (tag !== ITEM) return false;
    const itemLength = syn.little ? b.readUInt32LE(offset + 4) : b.readUInt32BE(offset + 4);
    return itemLength === UNDEFINED_LENGTH || itemLength + 8 <= length;
  }

  /**
   * Walk the elements in [start, end). With `untilDelimiter`, stops at an item delimitation item and
   * returns its position; otherwise returns `end`. Unchanged bytes are copied to `out` as slices.
   */
  walk(start: number, end: number, syn: Syntax, depth: number, out: Out, untilDelimiter: boolean): number {
    const { buf, h } = this;
    const { profile } = this.values;
    const create = depth === 0 ? profile.create : NO_CREATE;
    let createAt = 0;
    let creators: Map<number, string> | undefined;
    let pos = start;
    let span = start;
    while (pos < end) {
      readHeader(buf, pos, end, syn, h);
      const tag = h.tag;
      if (tag === ITEM_DELIMITER && untilDelimiter) {
        out.copy(buf, span, pos);
        return pos;
      }
      const elemStart = pos;
      const fileVr = h.vr;
      const length = h.length;
      const valueOffset = h.valueOffset;
      const group = tag >>> 16;
      const element = tag & 0xffff;

      // Elements the profile creates, before the first element with a higher tag.
      while (createAt < create.length && create[createAt]!.tag < tag) {
        const c = create[createAt++]!;
        out.copy(buf, span, elemStart);
        span = elemStart;
        this.create(out, c.tag, c.vr, c.rule, syn);
        out.changed = true;
      }
      if (createAt < create.length && create[createAt]!.tag === tag) createAt++;

      // Decide.
      let rule: Rule | undefined;
      let drop = false;
      const isPrivate = (group & 1) === 1;
      if (group === 0xfffe) {
        // stray item/delimiter inside a data set: copied
      } else if (element === 0x0000) {
        drop = true; // group length: retired, and wrong once anything changes
      } else if (isPrivate) {
        if (!profile.keepPrivate) drop = true;
        else {
          if (element >= 0x0010 && element <= 0x00ff && length !== UNDEFINED_LENGTH) {
            creators ??= new Map();
            creators.set(
              (group << 8) | element,
              trimText(buf.toString("latin1", valueOffset, valueOffset + length)),
            );
          }
          rule = profile.privateOverrides.get(tag);
          if (rule === undefined && element >= 0x1000 && profile.privateRules.size > 0) {
            const creator = creators?.get((group << 8) | (element >> 8));
            if (creator !== undefined)
              rule = profile.privateRules.get(`${creator}|${group}|${element & 0xff}`);
          }
        }
      } else {
        rule = profile.rules.get(tag);
      }
      if (rule?.noEvent && this.values.event === undefined) rule = rule.noEvent;
      if (rule?.act === A.REMOVE) {
        if (depth === 0 && this.type2?.has(tag)) rule = EMPTY_RULE;
        else drop = true;
      }

      const vr = this.effectiveVr(tag, fileVr);
      let isSequence = vr === VR.SQ;
      let guessed = false;
      let encapsulated = false;
      if (!isSequence && group !== 0xfffe) {
        if (length === UNDEFINED_LENGTH) {
          if (fileVr === VR.UN || (fileVr === 0 && tag !== PIXEL_DATA)) isSequence = true;
          else encapsulated = true;
        } else if (
          (vr === 0 || vr === VR.UN) &&
          this.looksLikeSequence(valueOffset, length, innerSyntax(fileVr, syn))
        ) {
          isSequence = guessed = true;
        }
      }
      const inner = innerSyntax(fileVr, syn);

      if (drop) {
        const elemEnd = this.elementEnd(valueOffset, length, inner);
        out.copy(buf, span, elemStart);
        out.changed = true;
        pos = span = elemEnd;
        continue;
      }

      if (isSequence) {
        const headerVr = fileVr === 0 ? VR.SQ : fileVr;
        if (
          rule &&
          (rule.act === A.EMPTY || rule.act === A.DUMMY || (rule.act === A.METHOD_CODES && depth === 0))
        ) {
          const elemEnd = this.elementEnd(valueOffset, length, inner);
          out.copy(buf, span, elemStart);
          if (rule.act === A.METHOD_CODES) out.push(this.methodCodes(syn));
          else this.emit(out, tag, headerVr, EMPTY, syn);
          out.changed = true;
          pos = span = elemEnd;
          continue;
        }
        const sub = new Out();
        let elemEnd = -1;
        try {
          elemEnd = this.sequence(valueOffset, length, inner, depth + 1, sub);
        } catch (e) {
          // A value of unknown VR that only looked like a sequence: treated as an opaque value below.
          if (!guessed || !(e instanceof DeidParseError)) throw e;
        }
        if (elemEnd >= 0) {
          if (sub.changed) {
            out.copy(buf, span, elemStart);
            const undefinedLength = length === UNDEFINED_LENGTH;
            const header = Buffer.allocUnsafe(headerSize(headerVr, syn));
            writeHeader(header, 0, tag, headerVr, undefinedLength ? UNDEFINED_LENGTH : sub.size, syn);
            out.enclose(header, sub, undefinedLength ? itemHeader(SEQUENCE_DELIMITER, 0, inner) : undefined);
            span = elemEnd;
          }
          pos = elemEnd;
          continue;
        }
      }

      if (encapsulated) {
        pos = skipUndefined(buf, valueOffset, this.end, inner, h);
        continue;
      }

      const elemEnd = valueOffset + length;
      let value: Buffer | null | undefined;
      if (depth === 0 && tag === PIXEL_DATA && this.cleanRects) {
        value = Buffer.from(buf.subarray(valueOffset, elemEnd));
        blankRectangles(value, this.geometry!, this.cleanRects);
        this.pixelsCleaned = true;
      } else if (depth === 0 && tag === TAG_BURNED_IN && this.cleanRects) {
        value = this.values.encode("NO", VR.CS);
        if (this.values.sameBytes(value, valueOffset, length)) value = undefined;
      } else if (rule) {
        value = this.values.apply(rule, tag, vr, valueOffset, length);
      } else if (vr === VR.PN && !isPrivate) {
        value = length === 0 ? undefined : EMPTY;
      }

      if (depth === 0 && (tag === TAG_SOP_INSTANCE || tag === TAG_SERIES_UID || tag === TAG_STUDY_UID)) {
        const written =
          value === null
            ? ""
            : normalizeUid(
                value === undefined ? buf.toString("latin1", valueOffset, elemEnd) : value.toString("latin1"),
              );
        if (tag === TAG_SOP_INSTANCE) this.newSop = written;
        else if (tag === TAG_SERIES_UID) this.newSeries = written;
        else this.newStudy = written;
      }

      if (value !== undefined) {
        out.copy(buf, span, elemStart);
        if (value !== null) this.emit(out, tag, fileVr === 0 ? vr : fileVr, value, syn);
        out.changed = true;
        span = elemEnd;
      }
      pos = elemEnd;
    }
    if (untilDelimiter) throw new DeidParseError("item without an item delimiter");
    while (createAt < create.length) {
      const c = create[createAt++]!;
      out.copy(buf, span, end);
      span = end;
      this.create(out, c.tag, c.vr, c.rule, syn);
      out.changed = true;
    }
    out.copy(buf, span, end);
    return end;
  }

  /**
   * The items of a sequence value starting at `start`. When anything inside changes, `out` receives the
   * re-encoded items (without the sequence header and delimiter) and `out.changed` is set. Returns the
   * position after the element (after the sequence delimiter for undefined length).
   */
  private sequence(start: number, length: number, syn: Syntax, depth: number, out: Out): number {
    const { buf, h } = this;
    const undefinedLength = length === UNDEFINED_LENGTH;
    const limit = undefinedLength ? this.end : start + length;
    let pos = start;
    let span = start;
    while (pos < limit) {
      readHeader(buf, pos, limit, syn, h);
      if (h.tag === SEQUENCE_DELIMITER) {
        out.copy(buf, span, pos);
        return h.valueOffset;
      }
      if (h.tag !== ITEM) throw new DeidParseError(`expected a sequence item at byte ${pos}`);
      const itemStart = pos;
      const itemLength = h.length;
      const contentStart = h.valueOffset;
      const sub = new Out();
      let itemEnd: number;
      if (itemLength === UNDEFINED_LENGTH) {
        itemEnd = this.walk(contentStart, limit, syn, depth, sub, true) + 8;
      } else {
        itemEnd = contentStart + itemLength;
        this.walk(contentStart, itemEnd, syn, depth, sub, false);
      }
      if (sub.changed) {
        out.copy(buf, span, itemStart);
        const undefinedItem = itemLength === UNDEFINED_LENGTH;
        const header = itemHeader(ITEM, undefinedItem ? UNDEFINED_LENGTH : sub.size, syn);
        out.enclose(header, sub, undefinedItem ? itemHeader(ITEM_DELIMITER, 0, syn) : undefined);
        span = itemEnd;
      }
      pos = itemEnd;
    }
    if (undefinedLength) throw new DeidParseError("sequence without a sequence delimiter");
    out.copy(buf, span, limit);
    return limit;
  }
}
