// @ts-check
// What several parts of the page read: who is signed in, which view is shown, which study is open.

/** @import { Session, StudyDetail } from "./types.js" */

/** @typedef {"studies" | "transfers" | "coupling" | "exports" | "failures" | "audit"} View */

export const state = {
  /** @type {Session | null} */
  me: null,
  /** @type {View} */
  view: "studies",
  /**
   * The StudyInstanceUID of the study in the panel.
   * @type {string | null}
   */
  selected: null,
  /** @type {StudyDetail | null} */
  selectedDetail: null,
};
