/**
 * New values for single elements under the profile's rules: UIDs mapped, dates shifted, identifiers
 * hashed, literals (participant, project, event…) written, descriptions cleaned of the patient's
 * identifiers. Values are encoded as the file's text is (UTF-8 or Latin-1) and padded to even length.
 */
import { VR, maxLength } from "./bytes.js";
import { shiftDateValue } from "./dates.js";
import type { Keyring } from "./prepared.js";
import { A, BODY_PARTS, L, dummyValue, type CompiledProfile, type Rule } from "./profile.js";
import type { ProjectDeid } from "./project.js";
import type { TopLevelScan } from "./scan.js";
import { isWellKnownUid, keyedDigits, legacyDigits, normalizeUid, normalizeUid as trimText } from "./uid.js";

export const TAG_STUDY_UID = 0x0020000d;
export const EMPTY = Buffer.alloc(0);

export class ElementValues {
  /** The file's text is UTF-8 (Specific Character Set ISO_IR 192), else Latin-1. */
  readonly utf8: boolean;
  private studyIdCache: string | undefined;
  private identifiers: string[] | undefined;

  constructor(
    private readonly buf: Buffer,
    private readonly scan: TopLevelScan,
    readonly profile: CompiledProfile,
    private readonly project: ProjectDeid,
    private readonly ring: Keyring,
    private readonly secret: string,
    private readonly participant: string,
    readonly event: string | undefined,
  ) {
    this.utf8 = (scan.text(0x00080005) ?? "").includes("ISO_IR 192");
  }

  encode(text: string, vr: number): Buffer {
    const max = vr === 0 ? 65534 : maxLength(vr);
    if (text.length > max) text = text.slice(0, max);
    const enc = this.utf8 ? "utf8" : "latin1";
    const len = Buffer.byteLength(text, enc);
    const out = Buffer.allocUnsafe(len + (len & 1));
    out.write(text, 0, enc);
    if (len & 1) out[len] = vr === VR.UI ? 0 : 0x20;
    return out;
  }

  sameBytes(value: Buffer, offset: number, length: number): boolean {
    return value.length === length && this.buf.compare(value, 0, value.length, offset, offset + length) === 0;
  }

  literal(rule: Rule): string {
    switch (rule.lit) {
      case L.PROJECT:
        return this.project.name;
      case L.PARTICIPANT:
        return this.participant;
      case L.EVENT:
        return this.event ?? "";
      case L.EVENT_REF:
        return this.event === undefined ? "" : `EventName:${this.event}`;
      case L.METHOD:
        return this.profile.methodText;
      case L.LONGITUDINAL:
        return this.profile.temporal === "modified"
          ? "MODIFIED"
          : this.profile.temporal === "full"
            ? "UNMODIFIED"
            : "REMOVED";
      default:
        return rule.text;
    }
  }

  private mapUids(tag: number, offset: number, length: number): string | undefined {
    const raw = this.buf.toString("latin1", offset, offset + length);
    const mapper = this.ring.mapper;
    if (mapper.mode === "fiona-legacy") {
      const clean = normalizeUid(raw);
      if (clean === "" || isWellKnownUid(clean)) return undefined;
      let r = raw;
      if (tag === TAG_STUDY_UID) while (r.endsWith("\u0000")) r = r.slice(0, -1);
      return mapper.mapLegacyRaw(r);
    }
    if (!raw.includes("\\")) {
      const clean = normalizeUid(raw);
      if (clean === "" || isWellKnownUid(clean)) return undefined;
      return mapper.mapClean(clean);
    }
    let changed = false;
    const parts = raw.split("\\").map((part) => {
      const clean = normalizeUid(part);
      if (clean === "" || isWellKnownUid(clean)) return clean;
      changed = true;
      return mapper.mapClean(clean);
    });
    return changed ? parts.join("\\") : undefined;
  }

  private studyId(fallbackOffset: number, fallbackLength: number): string {
    if (this.studyIdCache !== undefined) return this.studyIdCache;
    const rawStudy = this.scan.raw(TAG_STUDY_UID);
    const project = this.project.name;
    let id: string;
    if (rawStudy !== undefined && normalizeUid(rawStudy) !== "") {
      if (this.ring.mapper.mode === "fiona-legacy") {
        let r = rawStudy;
        while (r.endsWith("\u0000")) r = r.slice(0, -1);
        id = legacyDigits(Buffer.concat([Buffer.from(r, "latin1"), Buffer.from(project, "utf8")])).slice(
          0,
          16,
        );
      } else {
        const mapped = this.ring.mapper.mapClean(normalizeUid(rawStudy));
        id = mapped.slice(5, 21);
      }
    } else {
      const own = trimText(this.buf.toString("latin1", fallbackOffset, fallbackOffset + fallbackLength));
      id = this.hashText(
        "StudyID",
        own,
        this.buf.toString("latin1", fallbackOffset, fallbackOffset + fallbackLength),
      );
    }
    this.studyIdCache = id;
    return id;
  }

  private hashText(label: string, value: string, raw: string): string {
    const mapper = this.ring.mapper;
    if (mapper.mode === "fiona-legacy") {
      return mapper.memo(`\u0002${raw}`, () => legacyDigits(Buffer.from(raw, "latin1")).slice(0, 16));
    }
    return mapper.memo(`\u0003${label}\u0000${value}`, () =>
      keyedDigits(this.secret, label, this.project.name, value, 16),
    );
  }

  /** The patient's identifiers (lower case, longest first) for Clean Descriptors. */
  private patientIdentifiers(): string[] {
    if (this.identifiers) return this.identifiers;
    const found = new Set<string>();
    const add = (s: string | undefined, split: RegExp) => {
      for (const part of (s ?? "").split(split)) {
        const t = part.trim().toLowerCase();
        if (t.length >= 3) found.add(t);
      }
    };
    add(this.scan.text(0x00100010), /[\^=\\ ,]+/);
    add(this.scan.text(0x00101001), /[\^=\\ ,]+/);
    add(this.scan.text(0x00100020), /\\/);
    add(this.scan.text(0x00101000), /\\/);
    add(this.scan.text(0x00080050), /\\/);
    add(this.scan.text(0x00100030), /\\/);
    this.identifiers = [...found].sort((a, b) => b.length - a.length);
    return this.identifiers;
  }

  private clean(value: string): string {
    let out = value;
    for (const id of this.patientIdentifiers()) {
      let lower = out.toLowerCase();
      for (let at = lower.indexOf(id); at !== -1; at = lower.indexOf(id)) {
        out = out.slice(0, at) + out.slice(at + id.length);
        lower = out.toLowerCase();
      }
    }
    return out === value ? value : out.replace(/\s{2,}/g, " ").trim();
  }

  /**
   * New value for a non-sequence element: undefined = unchanged, null = remove.
   * `vr` is the effective VR (0 when unknown).
   */
  apply(rule: Rule, tag: number, vr: number, offset: number, length: number): Buffer | null | undefined {
    switch (rule.act) {
      case A.KEEP:
      case A.METHOD_CODES:
        return undefined;
      case A.REMOVE:
        return null;
      case A.EMPTY:
        return length === 0 ? undefined : EMPTY;
      case A.DUMMY: {
        if (length === 0) return undefined;
        if (vr === VR.UI) return this.apply({ ...rule, act: A.UID }, tag, vr, offset, length);
        const dummy = dummyValue(vr);
        if (dummy === undefined) return EMPTY;
        const b = this.encode(dummy, vr);
        return this.sameBytes(b, offset, length) ? undefined : b;
      }
      case A.UID: {
        if (vr !== VR.UI && vr !== 0 && vr !== VR.UN) return undefined;
        const mapped = this.mapUids(tag, offset, length);
        return mapped === undefined ? undefined : this.encode(mapped, VR.UI);
      }
      case A.HASH: {
        const raw = this.buf.toString("latin1", offset, offset + length);
        const value = trimText(raw);
        if (value === "") return undefined;
        return this.encode(this.hashText("AccessionNumber", value, raw), vr || VR.SH);
      }
      case A.STUDY_ID: {
        const b = this.encode(this.studyId(offset, length), vr || VR.SH);
        return this.sameBytes(b, offset, length) ? undefined : b;
      }
      case A.SHIFT: {
        const value = trimText(this.buf.toString("latin1", offset, offset + length));
        if (value === "") return undefined;
        const shifted = shiftDateValue(value, this.ring.dateOffset);
        if (shifted === undefined) return EMPTY;
        if (shifted === value) return undefined;
        return this.encode(shifted, vr || VR.DA);
      }
      case A.LITERAL: {
        const b = this.encode(this.literal(rule), vr);
        return this.sameBytes(b, offset, length) ? undefined : b;
      }
      case A.BODYPART: {
        const value = trimText(this.buf.toString("latin1", offset, offset + length));
        if (value === "" || BODY_PARTS.has(value.toUpperCase())) return undefined;
        return this.encode("BODYPART", vr || VR.CS);
      }
      case A.CLEAN: {
        const enc = this.utf8 ? "utf8" : "latin1";
        const value = this.buf.toString(enc, offset, offset + length);
        const cleaned = this.clean(value);
        return cleaned === value ? undefined : this.encode(trimText(cleaned), vr);
      }
      default:
        return undefined;
    }
  }
}
