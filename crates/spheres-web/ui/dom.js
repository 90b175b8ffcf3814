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
