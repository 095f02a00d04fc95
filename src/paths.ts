import path from "node:path";
import { assertPathSafeUid } from "./dicom/uid.js";

/** The FIONA on-disk layout, rooted at <dataDir>/site. */
export class SitePaths {
  readonly site: string;
  constructor(readonly dataDir: string) {
    this.site = path.join(dataDir, "site");
  }
  get archive(): string {
    return path.join(this.site, "archive");
  }
  get raw(): string {
    return path.join(this.site, "raw");
  }
  get participants(): string {
    return path.join(this.site, "participants");
  }
  get quarantineBad(): string {
    return path.join(this.site, "quarantine-bad");
  }
  get incoming(): string {
    return path.join(this.site, "incoming");
  }
  get temp(): string {
    return path.join(this.site, "temp");
  }
  get outbox(): string {
    return path.join(this.site, "outbox");
  }
  /** Pseudonymized files of one series of one transfer request, waiting to be sent. */
  outboxSeries(requestId: string, seriesUid: string): string {
    if (!/^[0-9a-f]{8,64}$/.test(requestId)) throw new Error("transfer request id must be hexadecimal");
    return path.join(this.outbox, requestId, assertPathSafeUid(seriesUid, "SeriesInstanceUID"));
  }
  archiveStudyDir(studyUid: string): string {
    return path.join(this.archive, `scp_${assertPathSafeUid(studyUid, "StudyInstanceUID")}`);
  }
  rawStudyDir(studyUid: string): string {
    return path.join(this.raw, assertPathSafeUid(studyUid, "StudyInstanceUID"));
  }
  rawSeriesDir(studyUid: string, seriesUid: string): string {
    return path.join(this.rawStudyDir(studyUid), assertPathSafeUid(seriesUid, "SeriesInstanceUID"));
  }
  seriesJson(studyUid: string, seriesUid: string): string {
    return `${this.rawSeriesDir(studyUid, seriesUid)}.json`;
  }
}

/** Make an arbitrary string (PatientID, description) safe as one path component. */
export function safePathComponent(value: string, fallback = "unknown"): string {
  const cleaned = value
    // Control characters are path hazards too (NUL truncates, newlines break logs).
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, "_")
    .trim()
    .replace(/^\.+/, "_");
  return cleaned === "" ? fallback : cleaned.slice(0, 128);
}

/**
 * participants/<PatientID>/… is the one place of the layout named after patient identity: an error
 * that quotes such a path (a failed symlink, a full disk) must not carry the ID into logs, job records
 * or the quarantine.
 */
export function redactIdentifyingPaths(text: string): string {
  return text.replace(/participants\/[^/'"\n]+/g, "participants/<redacted>");
}
