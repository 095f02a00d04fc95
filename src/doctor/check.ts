/** One line of `fiona doctor`: what was checked, how it went, and what to do about it. */
export interface CheckResult {
  name: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  /** What to change when it is not ok. */
  fix?: string;
}

export const ok = (name: string, detail: string): CheckResult => ({ name, status: "ok", detail });
export const warn = (name: string, detail: string, fix: string): CheckResult => ({
  name,
  status: "warn",
  detail,
  fix,
});
export const fail = (name: string, detail: string, fix: string): CheckResult => ({
  name,
  status: "fail",
  detail,
  fix,
});
