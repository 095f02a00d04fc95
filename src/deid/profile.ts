/**
 * De-identification profiles: the FIONA rule list (DICOMAnonymizer's table, corrected as described in
 * the module comment of engine.ts) over the PS3.15 Basic Application Level Confidentiality Profile, the
 * Basic profile itself with its options, and per-project overrides, compiled into lookup tables keyed
 * by numeric tag.
 */
import { VR, vrCode } from "./bytes.js";
import { parseTagKey, type ProjectDeid } from "./project.js";
import { entryForTag, standardEntries } from "../dicom/dictionary.js";

/** Actions. */
export const A = {
  KEEP: 0,
  REMOVE: 1,
  EMPTY: 2,
  /** Replace with a dummy value of the element's VR. */
  DUMMY: 3,
  /** Map every UID of the value. */
  UID: 4,
  /** Keyed hash of the value (AccessionNumber). */
  HASH: 5,
  /** Derived from the study's StudyInstanceUID. */
  STUDY_ID: 6,
  /** Shift DA/DT by the project offset (unparseable values are emptied). */
  SHIFT: 7,
  /** Write a value (see L). */
  LITERAL: 8,
  /** Keep when a known body-part code, else the literal BODYPART. */
  BODYPART: 9,
  /** Keep after removing the patient's identifiers from the text. */
  CLEAN: 10,
  /** DeidentificationMethodCodeSequence (top level): replaced by the engine's codes. */
  METHOD_CODES: 11,
} as const;

/** Sources of LITERAL values. */
export const L = {
  FIXED: 0,
  PROJECT: 1,
  PARTICIPANT: 2,
  /** The event name, "" without event. */
  EVENT: 3,
  /** "EventName:<event>", "" without event. */
  EVENT_REF: 4,
  /** DeidentificationMethod text. */
  METHOD: 5,
  /** MODIFIED / UNMODIFIED / REMOVED. */
  LONGITUDINAL: 6,
} as const;

export interface Rule {
  readonly act: number;
  readonly lit: number;
  readonly text: string;
  /** Create (top level) when missing. */
  readonly cim: boolean;
  /** Rule used instead when the call has no event (e.g. only write "EventName:x" with an event). */
  readonly noEvent?: Rule;
}

export type Temporal = "modified" | "full" | "none";

export interface CompiledProfile {
  /** Public tags. */
  readonly rules: ReadonlyMap<number, Rule>;
  /** Private rules keyed "<creator>|<group>|<low byte>". */
  readonly privateRules: ReadonlyMap<string, Rule>;
  /** Exact private tags from overrides (only with privateTags "keep"). */
  readonly privateOverrides: ReadonlyMap<number, Rule>;
  /** Rules to create when missing, ascending by tag. */
  readonly create: ReadonlyArray<{ tag: number; vr: number; rule: Rule }>;
  readonly keepPrivate: boolean;
  readonly temporal: Temporal;
  readonly cleanDescriptors: boolean;
  /** Codes for DeidentificationMethodCodeSequence (113101 is added per file when pixels were cleaned). */
  readonly codes: readonly string[];
  readonly methodText: string;
}

const rule = (act: number, cim = false, lit: number = L.FIXED, text = ""): Rule => ({ act, lit, text, cim });
const literal = (lit: number, text = "", cim = true): Rule => ({ act: A.LITERAL, lit, text, cim });

/**
 * FIONA's list (fiona-deid-profile.csv, public tags). Actions: uid = hashuid / hashuid+PROJECTNAME,
 * date = incrementdate / incrementdatetime, identity = set by the identity layer below, cim = create
 * when missing. Private rows are in FIONA_PRIVATE.
 */
const FIONA = `
00080012:date 00080014:uid 00080018:uid 00080020:date:cim 00080021:date 00080022:date 00080023:date
00080024:date 00080025:date 0008002A:date 00080030:keep:cim 00080031:keep 00080032:keep 00080033:keep
00080034:keep 00080035:keep 00080050:hash 00080058:uid 00080070:keep 00080080:identity 00080081:remove
00080082:remove 00080090:empty:cim 00080092:remove 00080094:remove 00080096:remove 0008010D:uid
00080201:remove 00081010:remove 00081030:keep 0008103E:keep 00081040:remove 00081048:remove 00081049:remove
00081050:remove 00081052:remove 00081060:remove 00081062:remove 00081070:remove 00081072:remove
00081080:keep 00081084:keep 00081090:keep 00081111:remove 00081120:remove 00081150:keep 00081155:uid
00081195:uid 00082111:keep 00082112:remove 00083010:uid 00084000:keep 00089123:uid 00100010:identity
00100020:identity 00100021:remove 00100030:empty 00100032:remove 00100040:keep 00100050:remove
00100101:remove 00100102:remove 00101000:remove 00101001:remove 00101002:remove 00101005:remove
00101010:keep 00101020:keep 00101030:keep 00101040:remove 00101050:remove 00101060:remove 00101080:remove
00101081:remove 00101090:remove 00102000:keep 00102110:keep 00102150:remove 00102152:remove 00102154:remove
00102160:keep 00102180:keep 001021A0:keep 001021B0:keep 001021C0:keep 001021D0:date 001021F0:remove
00102203:keep 00102297:remove 00102299:remove 00104000:keep 00120020:identity 00120021:identity
00120040:identity 00120050:identity 00120051:identity 00120062:identity 00120063:identity 00120064:identity
00180010:keep 00180015:bodypart 00181000:keep 00181002:keep 00181004:keep 00181005:keep 00181007:keep
00181008:keep 00181012:date 00181020:keep 00181030:keep 00181078:date 00181079:date 00181200:date
00181400:keep 00184000:keep 0018700A:keep 0018700C:date 00189424:keep 0018A003:keep 0020000D:uid
0020000E:uid 00200010:studyid 00200052:uid 00200200:uid 00203401:remove 00203404:remove 00203406:remove
00204000:keep 00209158:keep 00209161:uid 00209164:uid 00280301:keep 00280303:identity 00281199:uid
00281214:uid 00284000:remove 00320012:remove 00321000:date 00321020:keep 00321021:keep 00321030:keep
00321032:remove 00321033:remove 00321040:date 00321050:date 00321060:keep 00321070:keep 00324000:keep
00380004:remove 00380010:remove 00380011:remove 0038001E:remove 00380020:date 00380021:keep 00380040:keep
00380050:keep 00380060:remove 00380061:remove 00380062:keep 00380300:remove 00380400:remove 00380500:keep
00384000:keep 00400001:keep 00400002:date 00400003:keep 00400004:date 00400005:keep 00400006:remove
00400007:keep 0040000B:remove 00400010:keep 00400011:keep 00400012:keep 00400241:keep 00400242:keep
00400243:remove 00400244:date 00400245:keep 00400250:date 00400253:remove 00400254:keep 00400275:remove
00400280:keep 00400555:remove 00401001:remove 00401004:remove 00401005:remove 00401010:remove
00401011:remove 00401101:remove 00401102:remove 00401103:remove 00401400:keep 00402001:keep 00402008:remove
00402009:remove 00402010:remove 00402016:empty 00402017:empty 00402400:keep 00403001:remove 00404023:uid
00404025:keep 00404027:keep 00404028:keep 00404030:keep 00404034:remove 00404035:remove 00404036:remove
00404037:remove 0040A027:remove 0040A073:remove 0040A075:empty 0040A078:remove 0040A07A:remove
0040A07C:remove 0040A088:remove 0040A123:empty 0040A124:uid 0040A730:remove 0040DB0C:uid 0040DB0D:uid
00540016:keep 00700084:empty 00700086:remove 0070031A:uid 00880140:uid 00880200:remove 00880904:remove
00880906:remove 00880910:remove 00880912:remove 04000100:remove 04000402:remove 04000403:remove
04000404:remove 04000550:remove 04000561:remove 20300020:remove 30060008:date 30060024:uid 300600C2:uid
300A0013:uid 300E0008:remove 40000010:remove 40004000:remove 40080042:remove 40080102:remove
4008010A:remove 4008010B:keep 4008010C:remove 40080111:remove 40080114:remove 40080115:keep 40080118:remove
40080119:remove 4008011A:remove 40080202:remove 40080300:keep 40084000:keep FFFAFFFA:remove FFFCFFFC:remove
`;

/** FIONA's private rules, matched by private creator (the Sectra creator corrected, see engine.ts). */
const FIONA_PRIVATE: Array<[creator: string, group: number, low: number[], action: "remove" | "date"]> = [
  ["SECTRA_Ident_01", 0x0009, [0x01, 0x02], "remove"],
  ["CTP", 0x0013, [0x10, 0x11, 0x12, 0x13], "remove"],
  ["MITRA OBJECT UTF8 ATTRIBUTES 1.0", 0x0033, [0x13, 0x16, 0x19, 0x1c], "remove"],
  ["SIEMENS MED PT", 0x0071, [0x22], "date"],
];

/**
 * PS3.15 Basic profile: tag, action (X remove, Z empty, D dummy, U UID) and
 * the option that retains it (T temporal, I institution, D device, U UIDs, - none).
 */
const BASIC = `
00001000:U:- 00001001:U:- 00020003:U:- 00041511:U:- 00080012:X:T 00080013:X:T 00080014:U:- 00080015:X:T
00080018:U:- 00080020:Z:T 00080021:Z:T 00080022:Z:T 00080023:D:T 00080024:X:T 00080025:X:T 0008002A:D:T
00080030:Z:T 00080031:Z:T 00080032:Z:T 00080033:D:T 00080034:X:T 00080035:X:T 00080050:Z:- 00080051:X:-
00080058:U:- 00080080:D:I 00080081:X:I 00080082:Z:I 00080090:Z:- 00080092:X:- 00080094:X:- 00080096:X:-
0008009C:Z:- 0008009D:X:- 00080201:X:T 00081010:D:D 00081030:X:- 0008103E:X:- 0008103F:X:- 00081040:X:I
00081048:X:- 00081049:X:- 00081050:X:- 00081052:X:- 00081060:X:- 00081062:X:- 00081070:D:- 00081072:X:-
00081080:X:- 00081084:X:- 00081110:Z:U 00081111:Z:U 00081120:X:- 00081155:U:- 00081195:U:- 00082111:X:-
00083010:U:- 00084000:X:- 00100010:Z:- 00100020:Z:- 00100021:X:- 00100024:X:- 00100030:Z:- 00100032:X:-
00100040:Z:- 00100050:X:- 00100101:X:- 00100102:X:- 00101000:X:- 00101001:X:- 00101002:X:- 00101005:X:-
00101010:X:- 00101020:X:- 00101021:X:- 00101030:X:- 00101040:X:- 00101050:X:- 00101060:X:- 00101080:X:-
00101081:X:- 00101090:X:- 00101100:X:- 00102000:X:- 00102110:X:- 00102150:X:- 00102152:X:- 00102154:X:-
00102155:X:- 00102160:X:- 00102180:X:- 001021A0:X:- 001021B0:X:- 001021C0:X:- 001021D0:X:T 001021F0:X:-
00102203:Z:- 00102297:X:- 00102299:X:- 00104000:X:- 00180010:D:- 00181000:D:D 00181002:U:D 00181004:X:D
00181005:X:D 00181007:X:D 00181008:X:D 00181030:D:- 00181400:D:- 00182042:U:- 00184000:X:- 0018700A:D:D
00189424:X:- 00189516:D:T 00189517:D:T 0018A003:X:- 0020000D:U:- 0020000E:U:- 00200010:Z:- 00200052:U:-
00200200:U:- 00203401:X:- 00203406:X:- 00204000:X:- 00209158:X:- 00209161:U:- 00209164:U:- 00281199:U:-
00281214:U:- 00284000:X:- 00320012:X:- 00321020:X:D 00321021:X:D 00321030:X:- 00321031:X:- 00321032:X:-
00321033:X:- 00321034:X:- 00321060:Z:- 00321070:X:- 00324000:X:- 00380004:X:- 00380010:X:- 00380011:X:-
00380014:X:- 0038001E:X:- 00380020:Z:T 00380021:Z:T 00380040:X:- 00380044:X:- 00380050:X:- 00380060:X:-
00380061:X:- 00380062:X:- 00380300:X:- 00380400:X:- 00380500:X:- 00384000:X:- 00400001:X:D 00400002:X:T
00400003:X:T 00400004:X:T 00400005:X:T 00400006:X:- 00400007:X:- 0040000B:X:- 00400010:X:D 00400011:X:D
00400012:X:- 00400241:X:D 00400242:X:D 00400243:X:- 00400244:X:T 00400245:X:T 00400250:X:T 00400251:X:T
00400253:X:- 00400254:X:- 00400275:X:- 00400280:X:- 00400555:X:- 00401001:X:- 00401004:X:- 00401005:X:-
00401010:X:- 00401011:X:- 00401101:X:- 00401102:X:- 00401103:X:- 00401104:X:- 00401400:X:- 00402001:X:-
00402008:X:- 00402009:X:- 00402010:X:- 00402011:X:- 00402016:Z:- 00402017:Z:- 00402400:X:- 00403001:X:-
00404005:X:T 00404009:X:- 00404010:X:T 00404011:X:T 00404023:U:- 00404025:X:D 00404027:X:D 00404028:X:D
00404030:X:D 00404034:X:- 00404035:X:- 00404036:X:- 00404037:X:- 00404050:X:T 00404051:X:T 00404052:X:T
0040A027:D:- 0040A030:D:T 0040A075:D:- 0040A078:X:- 0040A07A:X:- 0040A07C:X:- 0040A088:Z:- 0040A123:D:-
0040A124:U:- 0040A171:U:- 0040A172:U:- 0040A192:X:T 0040A193:X:T 0040A307:X:- 0040A352:X:- 0040A353:X:-
0040A354:X:- 0040A358:X:- 0040A402:U:- 0040A730:X:- 0040DB0C:U:- 0040DB0D:U:- 00620021:U:- 00700001:X:-
00700084:Z:- 00700086:X:- 0070031A:U:- 00701101:U:- 00701102:U:- 00880140:U:- 00880200:X:- 00880904:X:-
00880906:X:- 00880910:X:- 00880912:X:- 04000100:X:- 04000402:X:- 04000403:X:- 04000404:X:- 04000550:X:-
04000561:X:- 20300020:X:- 30060024:U:- 300600C2:U:- 30080105:X:D 300A0013:D:- 300C0113:X:- 300E0008:Z:-
40000010:X:- 40004000:X:- 40080042:X:- 40080102:X:- 4008010A:X:- 4008010B:X:- 4008010C:X:- 40080111:X:-
40080114:X:- 40080115:X:- 40080118:X:- 40080119:X:- 4008011A:X:- 40080202:X:- 40080300:X:- 40084000:X:-
FFFAFFFA:X:- FFFCFFFC:X:-
`;

/** Retained by Retain Patient Characteristics (the "K" entries of that option in PS3.15 E.1-1). */
const PATIENT_CHARACTERISTICS = [
  0x00101010, 0x00100040, 0x00101020, 0x00101030, 0x00102160, 0x001021a0, 0x001021c0, 0x00102203,
];

/** Descriptions and comments kept after cleaning by the Clean Descriptors option. */
const DESCRIPTORS = [
  0x00081030, 0x0008103e, 0x00181030, 0x00181400, 0x00180010, 0x00204000, 0x00082111, 0x00081080, 0x00184000,
  0x00189424, 0x0018a003, 0x00209158, 0x00400254, 0x00321060, 0x00400007, 0x00380040, 0x00321030, 0x00284000,
  0x00324000, 0x00384000, 0x00380062, 0x00400280, 0x00321070, 0x001021b0, 0x00104000, 0x00203406, 0x00401400,
  0x00402001, 0x00402400,
];

/**
 * Type 2 attributes of the common IODs (patient, study, series, equipment, image, SR and presentation
 * modules): a "remove" on them empties instead, so the output stays valid.
 */
const TYPE2 = new Set<number>([
  0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00080020, 0x00080030, 0x00080090, 0x00200010, 0x00080050,
  0x00200011, 0x00200013, 0x00200060, 0x00200020, 0x00080023, 0x00080033, 0x00080070, 0x00201040, 0x00180010,
  0x00180060, 0x00200012, 0x00180081, 0x00180050, 0x00185100, 0x00700084, 0x0040a372, 0x0040a370, 0x00120021,
  0x00120030, 0x00120031, 0x00120050, 0x00120060,
  // Type 2 where present in some IODs: OperatorsName (RT Series), AcquisitionContextSequence,
  // VerifyingObserverIdentificationCodeSequence (SR Document General).
  0x00081070, 0x00400555, 0x0040a088,
]);

/**
 * Corrections of FIONA's list for validity (its "remove"/"empty" were no-ops or harmless in the
 * original, which never removed public tags): sequences that carry references or are required are
 * kept and processed inside; required values get a dummy instead of being emptied or removed.
 */
const FIONA_VALIDITY: Array<[tag: number, action: number]> = [
  [0x00082112, A.KEEP], // SourceImageSequence: references (UIDs remapped); Type 2 in the derivation macro
  [0x0040a073, A.KEEP], // VerifyingObserverSequence: Type 1C in verified SR documents
  [0x0040a075, A.DUMMY], // VerifyingObserverName: Type 1 inside it
  [0x0040a027, A.DUMMY], // VerifyingOrganization: Type 1 inside it
];

/**
 * Attributes that are Type 2 only in some IODs, by SOP class prefix: removing them there empties them.
 * (SR and key-object documents: Referenced Performed Procedure Step, Performed Procedure Code and
 * Referenced Request sequences of the SR Document Series / General modules.)
 */
export const TYPE2_BY_SOP_CLASS: ReadonlyArray<[prefix: string, tags: ReadonlySet<number>]> = [
  ["1.2.840.10008.5.1.4.1.1.88.", new Set([0x00081111, 0x0040a372, 0x0040a370])],
];

/** Values FIONA keeps in BodyPartExamined (CID 4031 code strings and common legacy values). */
export const BODY_PARTS = new Set(
  (
    "ABDOMEN ABDOMENPELVIS ADRENAL ANKLE AORTA ARM AXILLA BACK BLADDER BRAIN BREAST BRONCHUS BUTTOCK CALCANEUS " +
    "CALF CAROTID CEREBELLUM CERVIX CHEST CHESTABDOMEN CHESTABDPELVIS CIRCLEOFWILLIS CLAVICLE COCCYX COLON " +
    "CORNEA CORONARYARTERY CSPINE CTSPINE DUODENUM EAR ELBOW ESOPHAGUS EXTREMITY EYE EYELID FACE FEMUR FINGER " +
    "FOOT FOREARM GALLBLADDER HAND HEAD HEADNECK HEART HIP HUMERUS IAC ILEUM ILIUM JAW JEJUNUM KIDNEY KNEE " +
    "LARYNX LEG LIVER LSPINE LSSPINE LUNG MAXILLA MEDIASTINUM MOUTH NECK NECKCHEST NECKCHESTABDOMEN " +
    "NECKCHESTABDPELV NOSE ORBIT OVARY PANCREAS PAROTID PATELLA PELVIS PENIS PHARYNX PROSTATE RECTUM RIB " +
    "SACRUM SCALP SCAPULA SCLERA SCROTUM SHOULDER SKULL SPINE SPLEEN SSPINE STERNUM STOMACH SUBMANDIBULAR TESTIS " +
    "THIGH THORAX THUMB THYMUS THYROID TIBIA TOE TONGUE TRACHEA TSPINE TLSPINE UPRARM URETER URETHRA UTERUS " +
    "VAGINA VULVA WHOLEBODY WRIST ZYGOMA WHOLE BODY CAP SELLA SINUS SINUSES TMJ"
  ).split(" "),
);

/** UI elements holding class/syntax/scheme UIDs: never mapped. */
const CLASS_LIKE_UI =
  /Class|TransferSyntax|CodingScheme|^ContextUID$|MappingResource|PrivateInformationCreator|RepositoryUniqueID|HomeCommunityID|SelectorUIValue|RetrieveLocationUID|SegmentationTemplateUID|ReferencedContentItem/;

/** DICOM codes (CID 7050) and meanings. */
export const METHOD_CODES: Record<string, string> = {
  "113100": "Basic Application Confidentiality Profile",
  "113101": "Clean Pixel Data Option",
  "113105": "Clean Descriptors Option",
  "113106": "Retain Longitudinal Temporal Information Full Dates Option",
  "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
  "113108": "Retain Patient Characteristics Option",
  "113109": "Retain Device Identity Option",
  "113111": "Retain Safe Private Option",
  "113112": "Retain Institution Identity Option",
};

function* parseTable(table: string): Generator<[number, string[]]> {
  for (const token of table.split(/\s+/)) {
    if (token === "") continue;
    const [hex, ...rest] = token.split(":");
    yield [parseInt(hex!, 16) >>> 0, rest];
  }
}

interface Effective {
  temporal: Temporal;
  patientCharacteristics: boolean;
  deviceIdentity: boolean;
  institutionIdentity: boolean;
  cleanDescriptors: boolean;
}

function effectiveOptions(p: ProjectDeid): Effective {
  const fiona = p.profile === "fiona";
  const o = p.options;
  const full = o.retainLongitudinalFullDates ?? false;
  const modified = o.retainLongitudinalModifiedDates ?? fiona;
  return {
    temporal: full ? "full" : modified ? "modified" : "none",
    patientCharacteristics: o.retainPatientCharacteristics ?? fiona,
    deviceIdentity: o.retainDeviceIdentity ?? fiona,
    institutionIdentity: o.retainInstitutionIdentity ?? false,
    cleanDescriptors: o.cleanDescriptors ?? false,
  };
}

function isDateVr(tag: number): boolean {
  const vr = entryForTag(tag)?.vr;
  return vr === "DA" || vr === "DT";
}

/** What a retained temporal attribute becomes. */
function retainedTemporal(tag: number, temporal: Temporal): Rule {
  return temporal === "modified" && isDateVr(tag) ? rule(A.SHIFT) : rule(A.KEEP);
}

/** Basic-profile letter(s) to an action. Compound actions take the least destructive valid choice. */
function basicAction(tag: number, letters: string): Rule {
  const set = new Set(letters.replace(/\*/g, "").split("/"));
  if (set.has("U")) return rule(A.UID);
  if (set.size > 1) {
    if (TYPE2.has(tag) && set.has("Z")) return rule(A.EMPTY);
    if (set.has("X")) return rule(A.REMOVE);
    if (set.has("Z")) return rule(A.EMPTY);
  }
  if (set.has("X")) return rule(A.REMOVE);
  if (set.has("Z")) return rule(A.EMPTY);
  if (set.has("D")) return rule(A.DUMMY);
  return rule(A.KEEP);
}

/** An override or FIONA action word to a rule. */
function actionRule(action: string): Rule {
  switch (action) {
    case "keep":
    case "process":
      return rule(A.KEEP);
    case "remove":
      return rule(A.REMOVE);
    case "empty":
      return rule(A.EMPTY);
    case "dummy":
      return rule(A.DUMMY);
    case "hash":
      return rule(A.HASH);
    case "hashuid":
    case "hashuid+PROJECTNAME":
      return rule(A.UID);
    case "incrementdate":
    case "incrementdatetime":
      return rule(A.SHIFT);
    case "ProjectName":
    case "PROJECTNAME":
      return literal(L.PROJECT);
    case "PatientID":
      return literal(L.PARTICIPANT);
    case "EventName":
      return literal(L.EVENT);
    default:
      return literal(L.FIXED, action);
  }
}

const compiled = new WeakMap<ProjectDeid, CompiledProfile>();

/** Compile (memoised per parsed project object). */
export function compileProfile(p: ProjectDeid): CompiledProfile {
  let c = compiled.get(p);
  if (!c) {
    c = compile(p);
    compiled.set(p, c);
  }
  return c;
}

function compile(p: ProjectDeid): CompiledProfile {
  const o = effectiveOptions(p);
  const rules = new Map<number, Rule>();

  // 1. Generic floor from the dictionary: PN emptied, instance UIDs mapped, dates shifted or dummied.
  for (const e of standardEntries()) {
    if (e.vr === "PN") rules.set(e.tag, rule(A.EMPTY));
    else if (e.vr === "UI" && !CLASS_LIKE_UI.test(e.keyword)) rules.set(e.tag, rule(A.UID));
    else if (e.vr === "DA" || e.vr === "DT") {
      // Shifted with modified dates; without a temporal option a dummy (valid, identifies nothing).
      if (o.temporal === "modified") rules.set(e.tag, rule(A.SHIFT));
      else if (o.temporal === "none") rules.set(e.tag, rule(A.DUMMY));
    }
  }

  // 2. PS3.15 Basic profile with the options.
  const basic = new Map<number, Rule>();
  const temporalTags = new Set<number>();
  const deviceTags = new Set<number>();
  const institutionTags = new Set<number>();
  for (const [tag, [letters = "X", option = "-"]] of parseTable(BASIC)) {
    if (tag >>> 16 <= 0x0004) continue; // command, meta and DICOMDIR elements
    const base = basicAction(tag, letters);
    basic.set(tag, base);
    let r = base;
    if (option === "T") {
      temporalTags.add(tag);
      if (o.temporal !== "none") r = retainedTemporal(tag, o.temporal);
    } else if (option === "D") {
      deviceTags.add(tag);
      if (o.deviceIdentity) r = rule(A.KEEP);
    } else if (option === "I") {
      institutionTags.add(tag);
      if (o.institutionIdentity) r = rule(A.KEEP);
    }
    rules.set(tag, r);
  }
  if (o.patientCharacteristics) for (const tag of PATIENT_CHARACTERISTICS) rules.set(tag, rule(A.KEEP));

  // 3. FIONA's list over the floor. Retentions FIONA makes that a disabled option governs fall back to the floor.
  if (p.profile === "fiona") {
    const pc = new Set(PATIENT_CHARACTERISTICS);
    const floor = (tag: number): Rule => basic.get(tag) ?? rule(A.REMOVE);
    for (const [tag, [action = "keep", flag]] of parseTable(FIONA)) {
      if (action === "identity") continue;
      const cim = flag === "cim";
      let r: Rule;
      if (action === "date" || (action === "keep" && temporalTags.has(tag))) {
        // Without a temporal option: the Basic profile's action, else a dummy (some are Type 1/2).
        r = o.temporal === "none" ? (basic.get(tag) ?? rule(A.DUMMY)) : retainedTemporal(tag, o.temporal);
      } else if (action === "keep" && deviceTags.has(tag) && !o.deviceIdentity) r = floor(tag);
      else if (action === "keep" && pc.has(tag) && !o.patientCharacteristics) r = floor(tag);
      else if (institutionTags.has(tag) && o.institutionIdentity) r = rule(A.KEEP);
      else if (action === "studyid") r = rule(A.STUDY_ID);
      else if (action === "bodypart") r = rule(A.BODYPART);
      else if (action === "uid") r = rule(A.UID);
      else r = actionRule(action);
      rules.set(tag, cim && r.act !== A.REMOVE ? { ...r, cim: true } : r);
    }
    for (const [tag, act] of FIONA_VALIDITY) rules.set(tag, rule(act));
  }

  // 4. Clean Descriptors: descriptions are kept, minus the patient's identifiers.
  if (o.cleanDescriptors) {
    for (const tag of DESCRIPTORS) {
      const r = rules.get(tag);
      if (!r || r.act === A.KEEP || r.act === A.REMOVE || r.act === A.DUMMY) rules.set(tag, rule(A.CLEAN));
    }
  }

  // 5. Identity (both profiles).
  rules.set(0x00100010, literal(L.PARTICIPANT));
  rules.set(0x00100020, literal(L.PARTICIPANT));
  rules.set(0x00080080, o.institutionIdentity ? rule(A.KEEP) : literal(L.PROJECT));
  // Creating InstitutionName brings in the General Equipment module, whose Manufacturer is Type 2.
  if (!o.institutionIdentity)
    rules.set(0x00080070, { ...(rules.get(0x00080070) ?? rule(A.KEEP)), cim: true });
  rules.set(0x00080090, literal(L.EVENT_REF));
  rules.set(0x00080050, rule(A.HASH));
  rules.set(0x00200010, rule(A.STUDY_ID));
  rules.set(0x00120010, literal(L.PROJECT)); // ClinicalTrialSponsorName (Type 1 once the module is present)
  rules.set(0x00120020, literal(L.PROJECT));
  rules.set(0x00120021, literal(L.PROJECT));
  rules.set(0x00120030, literal(L.FIXED, ""));
  rules.set(0x00120031, literal(L.FIXED, ""));
  rules.set(0x00120040, literal(L.PARTICIPANT));
  rules.set(0x00120050, literal(L.EVENT));
  rules.set(0x00120051, { ...literal(L.EVENT), noEvent: rule(A.REMOVE) });
  rules.set(0x00120062, literal(L.FIXED, "YES"));
  rules.set(0x00120063, literal(L.METHOD));
  rules.set(0x00120064, rule(A.METHOD_CODES, true));
  rules.set(0x00280303, literal(L.LONGITUDINAL));
  if (p.profile === "fiona") {
    // anonymizeAndSend.py writes the event into these two as well.
    for (const tag of [0x00402001, 0x00401002]) {
      rules.set(tag, { ...literal(L.EVENT_REF, "", false), noEvent: rules.get(tag) ?? rule(A.KEEP) });
    }
  }
  if (p.keepBirthDate) rules.set(0x00100030, o.temporal === "modified" ? rule(A.SHIFT) : rule(A.KEEP));
  else rules.set(0x00100030, rule(A.EMPTY));

  // 6. Project overrides.
  const privateOverrides = new Map<number, Rule>();
  for (const [key, action] of Object.entries(p.overrides)) {
    const tag = parseTagKey(key);
    if (tag === undefined) throw new Error(`deid: unknown attribute "${key}" in overrides`);
    const r = actionRule(action);
    if ((tag >>> 16) % 2 === 1) privateOverrides.set(tag, r);
    else rules.set(tag, r.act === A.LITERAL && entryForTag(tag)?.vr === undefined ? { ...r, cim: false } : r);
  }

  // 7. Type 2 attributes are emptied rather than removed; an emptied sequence that is not Type 2 would
  // be invalid (a present Type 3 sequence needs items), so it is removed.
  for (const [tag, r] of rules) {
    if (r.act === A.REMOVE && TYPE2.has(tag)) rules.set(tag, { ...r, act: A.EMPTY });
    else if (r.act === A.EMPTY && !TYPE2.has(tag) && entryForTag(tag)?.vr === "SQ")
      rules.set(tag, { ...r, act: A.REMOVE });
  }

  const privateRules = new Map<string, Rule>();
  for (const [creator, group, lows, action] of FIONA_PRIVATE) {
    const r =
      action === "remove"
        ? rule(A.REMOVE)
        : o.temporal === "modified"
          ? rule(A.SHIFT)
          : o.temporal === "full"
            ? rule(A.KEEP)
            : rule(A.REMOVE);
    for (const low of lows) privateRules.set(`${creator}|${group}|${low}`, r);
  }

  const create: Array<{ tag: number; vr: number; rule: Rule }> = [];
  for (const [tag, r] of rules) {
    if (!r.cim || tag >>> 16 === 0x0002) continue;
    const vr = entryForTag(tag)?.vr;
    if (vr === undefined) continue;
    create.push({ tag, vr: vrCode(vr), rule: r });
  }
  create.sort((a, b) => a.tag - b.tag);

  const codes = ["113100"];
  if (o.cleanDescriptors) codes.push("113105");
  if (o.temporal === "full") codes.push("113106");
  if (o.temporal === "modified") codes.push("113107");
  if (o.patientCharacteristics) codes.push("113108");
  if (o.deviceIdentity) codes.push("113109");
  if (p.privateTags === "keep") codes.push("113111");
  if (o.institutionIdentity) codes.push("113112");

  return {
    rules,
    privateRules,
    privateOverrides,
    create,
    keepPrivate: p.privateTags === "keep",
    temporal: o.temporal,
    cleanDescriptors: o.cleanDescriptors,
    codes,
    methodText: `FIONA-TS ${p.profile} profile, ${p.uidMode} UIDs`,
  };
}

/** Dummy value for the D action, by VR (undefined: empty the element instead). */
export function dummyValue(vr: number): string | undefined {
  switch (vr) {
    case VR.DA:
      return "19000101";
    case VR.DT:
      return "19000101000000";
    case VR.TM:
      return "000000";
    case VR.IS:
    case VR.DS:
      return "0";
    case VR.AS:
      return "000Y";
    case VR.PN:
    case VR.LO:
    case VR.SH:
    case VR.LT:
    case VR.ST:
    case VR.UT:
    case VR.UC:
    case VR.CS:
    case VR.AE:
      return "ANONYMIZED";
    default:
      return undefined;
  }
}
