// @ts-check
// Finding and building elements. Everything shown is set as text (never innerHTML), so values from
// DICOM headers cannot inject markup.

/**
 * What h() sets: `text` is the text content, `dataset` the data-* attributes, on* add listeners,
 * everything else is an attribute (true: present, false/null/undefined: left out).
 * @typedef {object} Props
 * @property {string} [class]
 * @property {string} [text]
 * @property {Record<string, string>} [dataset]
 * @property {(ev: MouseEvent) => void} [onclick]
 * @property {(ev: KeyboardEvent) => void} [onkeydown]
 * @property {string} [value]
 * @property {string} [title]
 * @property {string} [type]
 * @property {string} [tabindex]
 * @property {string} [href]
 * @property {string} [download]
 * @property {string} [rel]
 * @property {boolean} [disabled]
 * @property {boolean} [selected]
 * @property {boolean} [hidden]
 */

/** @typedef {Node | string | null | undefined | false} Child Null, undefined and false are left out. */

/**
 * The page's element with this id, of the expected type: the markup is fixed, so a miss is a bug.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, name: string }} type
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return el;
}

/** @param {string} id */
export const $ = (id) => byId(id, HTMLElement);
/** @param {string} id */
export const input = (id) => byId(id, HTMLInputElement);
/** @param {string} id */
export const select = (id) => byId(id, HTMLSelectElement);
/** @param {string} id */
export const button = (id) => byId(id, HTMLButtonElement);
/** @param {string} id */
export const dialog = (id) => byId(id, HTMLDialogElement);

/**
 * The elements a selector matches (the page's selectors match only HTML elements).
 * @param {string} selector
 */
export const all = (selector) => /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(selector));

/**
 * h("div", { class: "x", onclick: fn }, "text", child)
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = String(v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Removes the element's children.
 * @template {Node} T
 * @param {T} el
 * @returns {T}
 */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/**
 * Appends a label and value to a <dl>; an empty value is left out.
 * @param {HTMLElement} dl
 * @param {string} label
 * @param {string | undefined} value
 * @param {string} [cls]
 */
export function fact(dl, label, value, cls) {
  if (value === undefined || value === "") return;
  dl.append(h("dt", {}, label), h("dd", { class: cls }, value));
}
