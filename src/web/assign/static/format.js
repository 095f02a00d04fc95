// @ts-check
// How dates, times, counts and sizes read on the page.

/**
 * DICOM DA (YYYYMMDD) as YYYY-MM-DD; anything else as it is.
 * @param {string | undefined} d
 */
export function fmtDate(d) {
  if (!d || !/^\d{8}$/.test(d)) return d || "";
  return `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
}

/**
 * DICOM TM (HHMMSS.frac) as HH:MM.
 * @param {string | undefined} t
 */
export function fmtTime(t) {
  if (!t) return "";
  const m = /^(\d{2})(\d{2})?/.exec(t);
  return m ? `${m[1]}:${m[2] || "00"}` : t;
}

/**
 * An ISO time as local "YYYY-MM-DD HH:MM".
 * @param {string | undefined} iso
 */
export function fmtStamp(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  /** @param {number} n */
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * An ISO time relative to now ("5 min ago"); older than a day as a stamp.
 * @param {string | undefined} iso
 */
export function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(s)) return "";
  if (s < 45) return "just now";
  if (s < 90) return "1 min ago";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) {
    const hrs = Math.round(s / 3600);
    return `${hrs} hour${hrs === 1 ? "" : "s"} ago`;
  }
  return fmtStamp(iso);
}

/**
 * @param {number} n
 * @param {string} word
 */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Bytes as "12 MB"; "" when unknown.
 * @param {number | null | undefined} n
 */
export function fmtSize(n) {
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/**
 * "PROJ · PROJ_0001 · baseline": where a study goes.
 * @param {{ project: string, participant: string, event?: string }} t
 */
export function targetLabel(t) {
  return `${t.project} · ${t.participant}${t.event ? ` · ${t.event}` : ""}`;
}
