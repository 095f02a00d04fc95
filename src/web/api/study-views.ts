import { promises as fs } from "node:fs";
import path from "node:path";
import { isPathSafeUid } from "../../dicom/uid.js";
import type { SitePaths } from "../../paths.js";
import {
  matchesStudyFilter,
  type SeriesEntry,
  type StudyEntry,
  type StudyFilter as RegistryStudyFilter,
  type StudyRegistry,
} from "../../registry/studies.js";
import type { TransferRecord } from "../../registry/transfers.js";

/**
 * The incoming list as the Assign page shows it: the study registry (no patient data) plus, only when
 * web.showPatientIdentity is on, accession number, patient name and ID, read from the series JSON on
 * disk (never from Redis) and cached per study until it changes. Searching by accession number works
 * either way, as an exact match through the registry's keyed index.
 */

export interface StudyTransferRef {
  requestId: string;
  project: string;
  participant: string;
  event?: string;
  status: TransferRecord["status"];
}

export interface StudyView {
  studyInstanceUid: string;
  status: StudyEntry["status"];
  studyDate?: string;
  studyTime?: string;
  studyDescription?: string;
  accessionNumber?: string;
  patientName?: string;
  patientId?: string;
  callingAe?: string;
  calledAe?: string;
  modalities: string[];
  seriesCount: number;
  fileCount: number;
  firstSeenAt: string;
  lastSeenAt: string;
  arrivedAt?: string;
  /** Transfers of this study in projects the caller may see. */
  transfers: StudyTransferRef[];
}

export interface StudyDetail extends StudyView {
  series: SeriesEntry[];
}

/** The registry's field filters (study date, accession, description, AE title, …) plus the page's own. */
export interface StudyFilter extends RegistryStudyFilter {
  /**
   * Free text: study and series descriptions, AE titles, modality, StudyInstanceUID, participants of
   * visible transfers (and accession number, patient name/ID when the site shows them); or exactly an
   * accession number.
   */
  q?: string;
  /** "unassigned": no visible transfer; "assigned": at least one. */
  assigned?: "all" | "assigned" | "unassigned";
  limit?: number;
}

interface Identity {
  accessionNumber?: string;
  patientName?: string;
  patientId?: string;
}

const str = (v: unknown): string | undefined =>
  typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;

/** "PHIMARK^PATIENT" → "PHIMARK, PATIENT"-like display: DICOM PN components joined readably. */
function personName(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const [family = "", given = "", middle = "", prefix = "", suffix = ""] = v.split("=")[0]!.split("^");
  const rest = [prefix, given, middle, suffix].filter((s) => s.trim() !== "").join(" ");
  return family && rest ? `${family}, ${rest}` : family || rest || undefined;
}

function bySeriesNumber(a: StudyEntry["series"][number], b: StudyEntry["series"][number]): number {
  const na = Number(a.seriesNumber);
  const nb = Number(b.seriesNumber);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return (a.seriesDescription ?? "").localeCompare(b.seriesDescription ?? "");
}

export class StudyViews {
  private readonly identityCache = new Map<string, { stamp: string; identity: Identity }>();

  constructor(
    private readonly paths: SitePaths,
    private readonly studies: StudyRegistry,
    private readonly showPatientIdentity: boolean,
  ) {}

  /** Accession number, patient name and ID from the first series JSON of the study, when enabled. */
  private async identity(entry: StudyEntry): Promise<Identity> {
    if (!this.showPatientIdentity) return {};
    const stamp = `${entry.lastSeenAt}:${entry.arrivals}`;
    const cached = this.identityCache.get(entry.studyInstanceUid);
    if (cached && cached.stamp === stamp) return cached.identity;
    let identity: Identity = {};
    try {
      const dir = this.paths.rawStudyDir(entry.studyInstanceUid);
      const fromRegistry = entry.series.map((s) => `${s.seriesInstanceUid}.json`);
      const names = fromRegistry.length
        ? fromRegistry
        : (await fs.readdir(dir)).filter((n) => n.endsWith(".json") && isPathSafeUid(n.slice(0, -5))).sort();
      for (const name of names) {
        const text = await fs.readFile(path.join(dir, name), "utf8").catch(() => undefined);
        if (!text) continue;
        const j = JSON.parse(text) as Record<string, unknown>;
        const [accessionNumber, patientName, patientId] = [j.AccessionNumber, j.PatientName, j.PatientID].map(
          str,
        );
        identity = {
          ...(accessionNumber ? { accessionNumber } : {}),
          ...(patientName ? { patientName: personName(patientName) } : {}),
          ...(patientId ? { patientId } : {}),
        };
        break;
      }
    } catch {
      identity = {};
    }
    this.identityCache.set(entry.studyInstanceUid, { stamp, identity });
    if (this.identityCache.size > 20_000) {
      const oldest = this.identityCache.keys().next().value;
      if (oldest !== undefined) this.identityCache.delete(oldest);
    }
    return identity;
  }

  async view(entry: StudyEntry, transfers: StudyTransferRef[]): Promise<StudyView> {
    const identity = await this.identity(entry);
    return {
      studyInstanceUid: entry.studyInstanceUid,
      status: entry.status,
      ...(entry.studyDate ? { studyDate: entry.studyDate } : {}),
      ...(entry.studyTime ? { studyTime: entry.studyTime } : {}),
      ...(entry.studyDescription ? { studyDescription: entry.studyDescription } : {}),
      ...identity,
      ...(entry.callingAe ? { callingAe: entry.callingAe } : {}),
      ...(entry.calledAe ? { calledAe: entry.calledAe } : {}),
      modalities: entry.modalities,
      seriesCount: entry.series.length,
      fileCount: entry.series.reduce((n, s) => n + s.numFiles, 0),
      firstSeenAt: entry.firstSeenAt,
      lastSeenAt: entry.lastSeenAt,
      ...(entry.arrivedAt ? { arrivedAt: entry.arrivedAt } : {}),
      transfers,
    };
  }

  async detail(entry: StudyEntry, transfers: StudyTransferRef[]): Promise<StudyDetail> {
    return {
      ...(await this.view(entry, transfers)),
      series: [...entry.series].sort(bySeriesNumber).map((s) => ({
        seriesInstanceUid: s.seriesInstanceUid,
        ...(s.seriesNumber ? { seriesNumber: s.seriesNumber } : {}),
        ...(s.seriesDescription ? { seriesDescription: s.seriesDescription } : {}),
        ...(s.modality ? { modality: s.modality } : {}),
        classifyType: s.classifyType,
        numFiles: s.numFiles,
      })),
    };
  }

  /** The incoming list, newest activity first, filtered. `transfersOf` gives the visible transfers of a study. */
  async list(filter: StudyFilter, transfersOf: (uid: string) => StudyTransferRef[]): Promise<StudyView[]> {
    const limit = Math.max(1, Math.min(filter.limit ?? 500, 5000));
    const entries = await this.studies.list(Math.max(limit, 10_000));
    const q = filter.q?.trim().toLowerCase();
    // Accession numbers are found by their digest: exactly, whether the list shows them or not.
    const withAccession = async (a: string | undefined) =>
      a?.trim() ? new Set(await this.studies.uidsByAccession(a)) : undefined;
    const [byAccession, byQuery] = await Promise.all([
      withAccession(filter.accession),
      withAccession(filter.q),
    ]);
    const fields: RegistryStudyFilter = {
      ...(filter.studyDateFrom ? { studyDateFrom: filter.studyDateFrom } : {}),
      ...(filter.studyDateTo ? { studyDateTo: filter.studyDateTo } : {}),
      ...(filter.seenFrom !== undefined ? { seenFrom: filter.seenFrom } : {}),
      ...(filter.seenTo !== undefined ? { seenTo: filter.seenTo } : {}),
      ...(filter.description ? { description: filter.description } : {}),
      ...(filter.aeTitle ? { aeTitle: filter.aeTitle } : {}),
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.modality ? { modality: filter.modality } : {}),
    };
    const out: StudyView[] = [];
    for (const entry of entries) {
      if (out.length >= limit) break;
      if (!matchesStudyFilter(entry, fields)) continue;
      if (byAccession && !byAccession.has(entry.studyInstanceUid)) continue;
      const transfers = transfersOf(entry.studyInstanceUid);
      if (filter.assigned === "assigned" && transfers.length === 0) continue;
      if (filter.assigned === "unassigned" && transfers.length > 0) continue;
      const v = await this.view(entry, transfers);
      if (q) {
        const hay = [
          v.accessionNumber,
          v.studyDescription,
          v.callingAe,
          v.calledAe,
          v.studyInstanceUid,
          ...entry.series.map((s) => s.seriesDescription),
          v.modalities.join(" "),
          v.patientName,
          v.patientId,
          ...transfers.map((t) => t.participant),
        ]
          .filter(Boolean)
          .join("\n")
          .toLowerCase();
        if (!hay.includes(q) && !byQuery?.has(entry.studyInstanceUid)) continue;
      }
      out.push(v);
    }
    return out;
  }
}
