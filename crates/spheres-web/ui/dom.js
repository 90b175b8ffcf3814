// Building the page without markup strings: h() makes an element, say() speaks in the
// page's live region.

/** An element: `attrs` are attributes, except on* (listeners), class and style; children
 *  are nodes or text (null and undefined are left out, arrays are flattened). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    // Through the CSSOM: the page's policy forbids style attributes (no inline style).
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** Says something in the live region under the header (screen readers read it out). */
export function say(msg) { document.getElementById("live").textContent = msg; }

// Placeholder glyphs as inline SVG (emoji fonts are not everywhere).
const GLYPHS = {
  video: '<path d="M9 7l9 5-9 5z"/>',
  audio: '<path d="M10 17a2 2 0 1 1-2-2h2V6l7-2v10a2 2 0 1 1-2-2h2V6l-7 2z"/>',
  image: '<path d="M4 18l5-6 4 4 2-2 5 4z"/><circle cx="15" cy="8" r="2"/>',
  document: '<path d="M7 3h7l4 4v14H7z"/>',
  archive: '<path d="M5 5h14v4H5zM6 10h12v10H6z"/>',
  other: '<path d="M4 8l8-4 8 4v8l-8 4-8-4z"/>',
};
/** A kind of file's placeholder glyph (`video`, `audio`, `image`, …), for when there is no
 *  thumbnail. */
export function mediaIcon(media) {
  const span = h("span", { class: "glyph" });
  span.innerHTML = `<svg viewBox="0 0 24 24" width="48" height="48" fill="currentColor" aria-hidden="true">${GLYPHS[media] || GLYPHS.other}</svg>`;
  return span;
}
