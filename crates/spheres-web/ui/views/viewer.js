// The viewer: the page's <dialog id="viewer"> showing one share (video, audio, picture, or a
// link to the file), with previous and next (buttons, arrow keys, a finger's swipe). Mounted
// by the sphere view on a card's click and by the feed on a post's photo; unmount closes it
// and lets go of the stream.
import { h } from "../dom.js";
import { t } from "../i18n.js";

function streamUrl(hash, index = 0) { return `/torrents/${hash}/files/${index}`; }

/** Shows share `index` of `shares()` (a function: the list is refreshed while it is open)
 *  in `dialog`. */
export function mount(dialog, { shares, index }) {
  const $ = (id) => document.getElementById(id);
  let viewing = -1;

  function open(i) {
    const s = shares()[i];
    if (!s || !s.info_hash) return;
    viewing = i;
    const url = streamUrl(s.info_hash, s.file ?? 0);
    $("viewer-title").textContent = s.name;
    /** @type {HTMLAnchorElement} */ ($("viewer-download")).href = url;
    let body;
    if (s.media === "video") body = h("video", { src: url, controls: true, playsinline: true, id: "player" });
    else if (s.media === "audio") body = h("audio", { src: url, controls: true, id: "player" });
    else if (s.media === "image" && s.files === 1) body = h("img", { src: url, alt: s.name });
    else body = h("p", {}, h("a", { href: url, download: s.name }, s.name));
    $("viewer-body").replaceChildren(body);
    // Started here rather than by the autoplay attribute: with a file still downloading,
    // Chromium's autoplay sometimes waits for the whole file; play() after the click does not.
    if (body.play) body.play().catch(() => {});
    $("viewer-path").textContent = s.path ? t("here", { path: s.path }) : "";
    if (!dialog.open) dialog.showModal();
  }

  /** The next (or previous) share that can be shown, going round. */
  function step(delta) {
    const list = shares();
    const n = list.length;
    for (let i = 1; i <= n; i++) {
      const j = (viewing + delta * i + n * n) % n;
      if (list[j].state === "seeding" || list[j].state === "downloading") { open(j); return; }
    }
  }

  const close = () => dialog.close();
  const prev = () => step(-1);
  const next = () => step(1);
  // Closed (by its button or Escape): the player goes, and with it the stream.
  const closed = () => $("viewer-body").replaceChildren();
  const keys = (ev) => {
    if (ev.key === "ArrowRight") step(1);
    if (ev.key === "ArrowLeft") step(-1);
  };
  // A finger's swipe sideways (not on a player, whose controls take drags) goes to the next
  // or the previous one.
  let swipeFrom = null;
  const down = (/** @type {PointerEvent} */ ev) => {
    const onPlayer = ev.target instanceof HTMLMediaElement;
    swipeFrom = ev.pointerType === "touch" && !onPlayer ? ev.clientX : null;
  };
  const up = (/** @type {PointerEvent} */ ev) => {
    if (swipeFrom === null) return;
    const dx = ev.clientX - swipeFrom;
    swipeFrom = null;
    if (Math.abs(dx) > 60) step(dx < 0 ? 1 : -1);
  };
  $("viewer-close").addEventListener("click", close);
  $("viewer-prev").addEventListener("click", prev);
  $("viewer-next").addEventListener("click", next);
  dialog.addEventListener("close", closed);
  dialog.addEventListener("keydown", keys);
  dialog.addEventListener("pointerdown", down);
  dialog.addEventListener("pointerup", up);
  open(index);

  return () => {
    $("viewer-close").removeEventListener("click", close);
    $("viewer-prev").removeEventListener("click", prev);
    $("viewer-next").removeEventListener("click", next);
    dialog.removeEventListener("close", closed);
    dialog.removeEventListener("keydown", keys);
    dialog.removeEventListener("pointerdown", down);
    dialog.removeEventListener("pointerup", up);
    if (dialog.open) dialog.close();
    closed();
  };
}
