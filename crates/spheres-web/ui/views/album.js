// A sphere's album: its photos and videos one by one (not share by share), under the day
// they were taken (EXIF; else the day they were shared), newest first. Each opens in the
// viewer, which goes to the next and previous one with its buttons, the arrow keys or a
// finger's swipe.
import { api, failLoad } from "../api.js";
import { h, mediaIcon } from "../dom.js";
import { on } from "../events.js";
import { day, t } from "../i18n.js";
import { enc, scope } from "../util.js";
import * as viewer from "./viewer.js";

/** @param {HTMLElement} el @param {{ name: string }} params */
export function mount(el, { name }) {
  const life = scope();
  const { signal } = life;
  const days = h("div", { class: "album", "aria-live": "polite" });
  el.replaceChildren(h("p", {}, h("a", { href: `#/s/${enc(name)}` }, "← " + name)),
    h("h1", {}, t("albumOf", { name })), days);

  /** @type {import("../../types/api").Photo[]} */
  let photos = [];
  let closeViewer = null;
  life.add(() => closeViewer?.());

  /** The day a photo belongs to (the camera's clock is read as UTC, so is the day). */
  const dayOf = (p) => new Date((p.taken ?? p.shared) * 1000).toISOString().slice(0, 10);

  async function draw() {
    photos = await api(`/spheres/${enc(name)}/photos`, { signal });
    /** @type {Map<string, [number, import("../../types/api").Photo][]>} */
    const byDay = new Map();
    photos.forEach((p, i) => {
      const k = dayOf(p);
      if (!byDay.has(k)) byDay.set(k, []);
      byDay.get(k)?.push([i, p]);
    });
    days.replaceChildren(...(photos.length
      ? [...byDay].map(([k, list]) => h("section", {},
        h("h2", {}, day(new Date(`${k}T00:00:00Z`))),
        h("ul", { class: "album-grid" }, ...list.map(([i, p]) => h("li", {}, tile(p, i))))))
      : [h("p", { class: "empty" }, t("noPhotos"))]));
  }

  /** A photo's button: its thumbnail (a placeholder until there is one). */
  function tile(p, i) {
    const icon = mediaIcon(p.kind);
    const img = h("img", { src: `/api/spheres/${enc(name)}/shares/${p.info_hash}/files/${p.index}/thumb`, alt: "", loading: "lazy",
      onerror: (/** @type {Event} */ ev) => /** @type {HTMLElement} */ (ev.target).replaceWith(icon) });
    return h("button", { type: "button", class: "open", "aria-label": p.name, onclick: () => open(i) },
      h("span", { class: "thumb" }, img),
      p.kind === "video" ? h("span", { class: "badge", "aria-hidden": "true" }, "▶") : null);
  }

  function open(i) {
    closeViewer?.();
    const items = photos.map((p) => ({ info_hash: p.info_hash, file: p.index, name: p.name, media: p.kind, files: 1, state: "seeding" }));
    closeViewer = viewer.mount(/** @type {HTMLDialogElement} */ (document.getElementById("viewer")), { shares: () => items, index: i });
  }

  draw().catch(failLoad);
  life.add(on(["share", "resync"], () => life.soon(() => draw().catch(failLoad))));
  return () => life.end();
}
