// New posts since the feed was last looked at: a count beside "Feed" in the header and in the
// tab's title, kept up to date by the node's `feed` events; opening the feed clears it.
import { api } from "./api.js";
import { h } from "./dom.js";
import { on } from "./events.js";
import { t } from "./i18n.js";

const SEEN = "spheres.feed.seen";
const badge = h("span", { class: "count-badge", hidden: true });
let shown = 0;

const onFeed = () => location.hash === "#/feed";

/** What was in the feed when it was last looked at: the newest time, and the posts of that
 *  page (a post of the same second is told apart by its id). */
function seen() {
  try {
    const s = JSON.parse(localStorage.getItem(SEEN) || "null");
    if (s && typeof s.at === "number" && Array.isArray(s.ids)) return { at: s.at, ids: new Set(s.ids) };
  } catch { /* an older or broken record: as if never looked */ }
  return null;
}

/** Counts beside `link` (the header's link to the feed) from now on. */
export function watchFeed(link) {
  link.after(badge);
  on(["feed", "resync"], () => { recount().catch(() => {}); });
  window.addEventListener("hashchange", () => { recount().catch(() => {}); });
  recount().catch(() => {});
}

/** The count again (in the language in use). */
export function redrawUnread() { show(shown); }

async function recount() {
  /** @type {{ id: string, mine: boolean, published: number }[]} */
  const posts = await api("/feed");
  const before = seen();
  // Looking at the feed (or a first visit: nothing is new yet) marks it all seen.
  if (onFeed() || !before) {
    localStorage.setItem(SEEN, JSON.stringify({ at: Math.max(0, ...posts.map((p) => p.published)), ids: posts.map((p) => p.id) }));
    show(0);
    return;
  }
  show(posts.filter((p) => !p.mine && p.published >= before.at && !before.ids.has(p.id)).length);
}

function show(n) {
  shown = n;
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.setAttribute("aria-label", t("newPosts", { n }));
  badge.title = t("newPosts", { n });
  document.title = n ? `(${n}) ${t("brand")}` : t("brand");
}
