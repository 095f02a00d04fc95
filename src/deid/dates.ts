/**
 * Date shifting for DA and DT values.
 *
 * Accepted per value (multi-valued elements are split on backslash): YYYY, YYYYMM, YYYYMMDD (DA, and
 * the date part of DT), the ACR-NEMA form YYYY.MM.DD (written back as YYYYMMDD), and for DT a time
 * HH[MM[SS[.F{1,6}]]] after a full date plus an optional &ZZXX offset. The date part is shifted with
 * calendar arithmetic (missing month/day count as 01 and are dropped again on output); everything after
 * it is copied verbatim. Anything else, an impossible calendar date, or a result outside years
 * 0001-9999 makes the whole value unparseable (the caller empties it).
 */

const DAY_MS = 86_400_000;
const DATE_RE = /^(\d{4})(?:(\d{2})(\d{2})?)?(.*)$/;
const ACR_NEMA_RE = /^(\d{4})\.(\d{2})\.(\d{2})$/;
const TIME_ZONE_RE = /^(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?:[+-]\d{4})?$/;
const ZONE_ONLY_RE = /^(?:[+-]\d{4})?$/;

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Shift one value; undefined when it cannot be parsed. "" stays "". */
function shiftOne(value: string, days: number): string | undefined {
  const v = value.trim();
  if (v === "") return "";
  let year: number;
  let month: number | undefined;
  let day: number | undefined;
  let rest = "";
  const acr = ACR_NEMA_RE.exec(v);
  if (acr) {
    year = Number(acr[1]);
    month = Number(acr[2]);
    day = Number(acr[3]);
  } else {
    const m = DATE_RE.exec(v);
    if (!m) return undefined;
    year = Number(m[1]);
    month = m[2] === undefined ? undefined : Number(m[2]);
    day = m[3] === undefined ? undefined : Number(m[3]);
    rest = m[4] ?? "";
    if (!(day !== undefined ? TIME_ZONE_RE : ZONE_ONLY_RE).test(rest)) return undefined;
  }
  if (year < 1) return undefined;
  const mm = month ?? 1;
  const dd = day ?? 1;
  if (mm < 1 || mm > 12 || dd < 1) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, mm - 1, dd);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== mm - 1 || d.getUTCDate() !== dd) return undefined;
  const shifted = new Date(d.getTime() + days * DAY_MS);
  const y = shifted.getUTCFullYear();
  if (y < 1 || y > 9999) return undefined;
  let out = pad(y, 4);
  if (month !== undefined) out += pad(shifted.getUTCMonth() + 1, 2);
  if (day !== undefined) out += pad(shifted.getUTCDate(), 2);
  return out + rest;
}

/**
 * Shift a DA or DT element value (possibly multi-valued) by `days`.
 * Returns undefined when any value cannot be parsed.
 */
export function shiftDateValue(value: string, days: number): string | undefined {
  if (!value.includes("\\")) return shiftOne(value, days);
  const parts = value.split("\\");
  for (let i = 0; i < parts.length; i++) {
    const s = shiftOne(parts[i]!, days);
    if (s === undefined) return undefined;
    parts[i] = s;
  }
  return parts.join("\\");
}
