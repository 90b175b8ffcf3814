// The page's words. One JSON file per language (ui/i18n/LANG.json, served at
// /ui/i18n/LANG.json), loaded when the page starts and when the language changes.
// A string is text with {placeholders}, or, when it counts something with {n}, an object of
// plural forms ("one", "other", ...) chosen by Intl.PluralRules. Numbers and dates are
// formatted by Intl for the language.

let lang = "en";
let strings = {};
let plurals = new Intl.PluralRules(lang);
const numberFormats = new Map();

/** The languages offered: the options of the page's language switch (index.html). */
function languages() {
  return [...document.querySelectorAll("#lang option")].map((o) => /** @type {HTMLOptionElement} */ (o).value);
}

/** The language chosen last in this browser, else the browser's own, else English. */
export function preferredLanguage() {
  const want = localStorage.getItem("lang") || (navigator.language || "en").slice(0, 2);
  return languages().includes(want) ? want : "en";
}

/** Loads a language's strings and makes it the page's language. */
export async function setLanguage(code) {
  const res = await fetch(`/ui/i18n/${encodeURIComponent(code)}.json`);
  if (!res.ok) throw new Error(`${code}.json: ${res.status} ${res.statusText}`);
  strings = await res.json();
  lang = code;
  plurals = new Intl.PluralRules(code);
  numberFormats.clear();
}

/** The string `key` with its {placeholders} filled from `vars` (numbers formatted for the
 *  language); a plural string takes its form from `vars.n`. An unknown key shows as itself. */
export function t(key, vars = {}) {
  let s = strings[key] ?? key;
  if (typeof s === "object") s = s[plurals.select(vars.n ?? 0)] ?? s.other;
  return s.replace(/\{(\w+)\}/g, (_, k) => {
    const v = vars[k];
    return typeof v === "number" ? number(v) : String(v ?? "");
  });
}

/** A number as the language writes it (Intl.NumberFormat options, if any). */
export function number(value, options) {
  const id = JSON.stringify(options ?? {});
  let format = numberFormats.get(id);
  if (!format) numberFormats.set(id, (format = new Intl.NumberFormat(lang, options)));
  return format.format(value);
}

/** Date and time, in full (what Date's toLocaleString gives for the language). */
export function dateTime(date) {
  return new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
  }).format(date);
}

/** A day in full ("Saturday 12 July 2025"), as it falls in UTC. */
export function day(date) {
  return new Intl.DateTimeFormat(lang, { dateStyle: "full", timeZone: "UTC" }).format(date);
}

/** Hours and minutes only. */
export function time(date) {
  return new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }).format(date);
}

/** Puts the language into the page's fixed parts: elements with data-i18n (their text) or
 *  data-i18n-label (their aria-label), the switch, and the document's lang. */
export function translatePage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.getAttribute("data-i18n"));
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.getAttribute("data-i18n-label")));
  /** @type {HTMLSelectElement} */ (document.getElementById("lang")).value = lang;
}
