// The feed: my posts, my contacts' and my spheres', newest first, with comments; a box to
// post, for my contacts, for everyone, for the whole web or for one sphere's members, showing
// photos and videos of that sphere (the draft and its audience survive a refresh); a post's
// photos and videos open in the viewer, and play while they download; older posts a
// page at a time as the reader scrolls. With `jid`: that person's page, their posts as their account gives them to
// me (all of them for a contact, else those for everyone).
// Text is shown as text (never as markup).
import { api, fail, failLoad } from "../api.js";
import { h, mediaIcon } from "../dom.js";
import { on } from "../events.js";
import { dateTime, t } from "../i18n.js";
import { enc, scope, size } from "../util.js";
import * as viewer from "./viewer.js";

const DRAFT = "spheres.feed.draft";
const DRAFT_TO = "spheres.feed.draft.to";

/** @param {HTMLElement} el @param {{ jid?: string }} [params] */
export function mount(el, { jid } = {}) {
  const life = scope();
  const { signal } = life;
  if (jid) return person(el, jid, life);

  const text = h("textarea", { id: "post-text", rows: 3, required: true, maxlength: 10000 });
  text.value = localStorage.getItem(DRAFT) || "";
  text.addEventListener("input", () => localStorage.setItem(DRAFT, text.value));
  const spheres = h("optgroup", { label: t("spheres") });
  // For a sphere: its shares, to show in the post.
  const pickList = h("ul", { class: "picks" });
  const picker = h("fieldset", { class: "post-media-picker", hidden: true },
    h("legend", {}, t("showInPost")), pickList);
  async function drawPicker() {
    const sphere = audience.value.startsWith("sphere:") ? audience.value.slice("sphere:".length) : "";
    picker.hidden = !sphere;
    if (!sphere) return;
    /** @type {{ info_hash: string, name: string, media: string, state: string }[]} */
    const list = await api(`/spheres/${enc(sphere)}/shares`, { signal });
    const shown = list.filter((s) => s.info_hash && s.state !== "hashing").slice(-24).reverse();
    pickList.replaceChildren(...(shown.length ? shown.map((s) => {
      const id = `pick-${s.info_hash}`;
      return h("li", {}, h("input", { type: "checkbox", id, value: s.info_hash }),
        h("label", { for: id }, thumbOf(sphere, s.info_hash, s.media, ""), h("span", { class: "name" }, s.name)));
    }) : [h("li", { class: "empty" }, t("nothingYet"))]));
  }
  const audience = h("select", { id: "post-to", onchange: () => {
    localStorage.setItem(DRAFT_TO, audience.value);
    drawPicker().catch(failLoad);
  } },
    h("option", { value: "contacts" }, t("toContacts")), h("option", { value: "everyone" }, t("toEveryone")),
    h("option", { value: "public" }, t("toPublic")), spheres);
  // The spheres I am in, as audiences ("sphere:NAME": a sphere may be called "public").
  api("/spheres", { signal }).then((/** @type {{ name: string }[]} */ list) => {
    spheres.replaceChildren(...list.map((s) => h("option", { value: `sphere:${s.name}` }, t("toSphere", { name: s.name }))));
    spheres.hidden = !list.length;
    const kept = localStorage.getItem(DRAFT_TO);
    if (kept && [...audience.options].some((o) => o.value === kept)) audience.value = kept;
    return drawPicker();
  }).catch(failLoad);
  const box = h("form", { class: "post-box", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const shares = picker.hidden ? [] : [...pickList.querySelectorAll("input:checked")].map((c) => /** @type {HTMLInputElement} */ (c).value);
      await api("/feed", { method: "POST", json: { text: text.value, to: audience.value, shares }, signal });
      for (const c of pickList.querySelectorAll("input")) /** @type {HTMLInputElement} */ (c).checked = false;
      text.value = "";
      localStorage.removeItem(DRAFT);
      await draw();
    } catch (e) { fail(e); }
  } }, h("label", { for: "post-text" }, t("postWhat")), text,
    h("label", { for: "post-to" }, t("postTo")), audience, picker, h("button", { type: "submit" }, t("post")));

  const list = h("ol", { class: "posts", "aria-live": "polite" });
  const more = h("button", { type: "button", hidden: true, onclick: () => draw(true).catch(failLoad) }, t("olderPosts"));
  el.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("feed")), box, list, more);
  // Older posts come as the button scrolls into view (it stays, for keyboards).
  const nearEnd = new IntersectionObserver((seen) => {
    if (!more.hidden && seen.some((e) => e.isIntersecting)) draw(true).catch(failLoad);
  });
  nearEnd.observe(more);
  life.add(() => nearEnd.disconnect());

  /** Comments open, and posts being edited, by post id: kept across redraws. */
  const open = new Set();
  const editing = new Set();
  let shown = [];
  let latest = 0;

  async function draw(older = false) {
    const mine = ++latest;
    const before = older && shown.length ? `?before=${shown[shown.length - 1].published}` : "";
    const page = await api(`/feed${before}`, { signal });
    if (mine !== latest) return;
    shown = older ? shown.concat(page) : page;
    more.hidden = page.length < 50;
    list.replaceChildren(...(shown.length ? await Promise.all(shown.map(item)) : [h("li", { class: "empty" }, t("noPosts"))]));
  }

  async function item(p) {
    const when = new Date(p.published * 1000);
    const head = h("p", { class: "post-head" }, byline(p), " ",
      h("span", { class: "muted" }, audienceOf(p)), " ",
      h("time", { datetime: when.toISOString() }, dateTime(when)));
    if (p.updated > p.published) head.append(" ", h("span", { class: "muted" }, t("edited")));
    let body = h("p", { class: "post-text" }, ...rich(p.rich));
    if (editing.has(p.id)) {
      const field = h("textarea", { id: `edit-${p.id}`, rows: 3, required: true, maxlength: 10000 });
      field.value = p.text;
      body = h("form", { class: "post-box", onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await api(`/feed/${enc(p.id)}/edit`, { method: "POST", json: { body: field.value }, signal });
          editing.delete(p.id);
          await draw();
        } catch (e) { fail(e); }
      } }, h("label", { for: `edit-${p.id}`, class: "sr" }, t("edit")), field,
        h("p", { class: "post-actions" }, h("button", { type: "submit" }, t("save")),
          h("button", { type: "button", onclick: () => { editing.delete(p.id); draw().catch(failLoad); } }, t("cancel"))));
    }
    const toggle = h("button", { type: "button", "aria-expanded": String(open.has(p.id)), onclick: () => {
      if (open.has(p.id)) open.delete(p.id); else open.add(p.id);
      draw().catch(failLoad);
    } }, t("commentsCount", { n: p.comments }));
    const actions = [toggle];
    if (p.mine && !editing.has(p.id)) actions.push(h("button", { type: "button", onclick: () => {
      editing.add(p.id);
      draw().catch(failLoad);
    } }, t("edit")));
    if (p.mine) actions.push(h("button", { type: "button", onclick: async () => {
      if (!confirm(t("deletePostConfirm"))) return;
      try { await api(`/feed/${enc(p.id)}/delete`, { method: "POST", json: {}, signal }); await draw(); } catch (e) { fail(e); }
    } }, t("delete")));
    const parts = [head, body];
    if (p.sphere && p.media.length) parts.push(mediaOf(p));
    parts.push(reactionsOf(p));
    parts.push(h("p", { class: "post-actions" }, ...actions));
    if (open.has(p.id)) parts.push(await comments(p));
    return h("li", { class: "post" }, ...parts);
  }

  async function comments(p) {
    const list = await api(`/feed/${enc(p.id)}/comments`, { signal });
    const say = h("input", { id: `comment-${p.id}`, autocomplete: "off", required: true, maxlength: 10000 });
    return h("section", { class: "comments" },
      h("ul", { class: "messages" }, list.map((c) => h("li", { class: c.mine ? "mine" : "" },
        h("strong", {}, c.mine ? t("online_you") : (c.author_name || c.author)), c.verified ? "" : " " + t("unverified"), " ",
        h("span", {}, ...rich(c.rich))))),
      h("form", { onsubmit: async (ev) => {
        ev.preventDefault();
        try { await api(`/feed/${enc(p.id)}/comments`, { method: "POST", json: { body: say.value }, signal }); await draw(); } catch (e) { fail(e); }
      } }, h("label", { for: `comment-${p.id}`, class: "sr" }, t("comment")), say, h("button", { type: "submit" }, t("comment"))));
  }

  // Reactions: the ones given, then a few to choose from; a press gives ours, or takes it back.
  function reactionsOf(p) {
    const given = new Map(p.reactions.map((r) => [r.emoji, r]));
    const emojis = [...new Set([...given.keys(), ...REACTIONS])];
    return h("p", { class: "reactions", role: "group", "aria-label": t("reactions") }, ...emojis.map((emoji) => {
      const r = given.get(emoji);
      return h("button", { type: "button", class: "reaction", "aria-pressed": String(Boolean(r?.mine)),
        "aria-label": r ? t("reactionCount", { emoji, n: r.count }) : t("reactWith", { emoji }),
        onclick: async () => {
          try { await api(`/feed/${enc(p.id)}/react`, { method: "POST", json: { emoji }, signal }); await draw(); } catch (e) { fail(e); }
        } }, emoji, r ? h("span", { class: "count" }, String(r.count)) : null);
    }));
  }

  // A post's photos and videos, opened in the viewer (with its sphere's others around them).
  let closeViewer = null;
  life.add(() => closeViewer?.());
  function mediaOf(p) {
    return h("ul", { class: "post-media" }, ...p.media.map((m) => h("li", {},
      h("button", { type: "button", class: "open", disabled: !m.here, title: m.here ? m.name : t("notHereYet"), onclick: async () => {
        try {
          const list = await api(`/spheres/${enc(p.sphere)}/shares`, { signal });
          const shown = p.media.map((x) => list.find((s) => s.info_hash === x.info_hash)).filter(Boolean);
          const index = shown.findIndex((s) => s.info_hash === m.info_hash);
          if (index < 0) return;
          closeViewer?.();
          closeViewer = viewer.mount(/** @type {HTMLDialogElement} */ (document.getElementById("viewer")), { shares: () => shown, index });
        } catch (e) { fail(e); }
      } }, thumbOf(p.sphere, m.info_hash, m.here ? m.kind : "", m.name),
      h("span", { class: "name" }, m.name), h("span", { class: "meta" }, size(m.size))))));
  }

  draw().catch(failLoad);
  const again = () => draw().catch(failLoad);
  life.add(on(["feed", "resync"], () => life.soon(again)));
  return () => life.end();
}

/** The reactions offered on every post. */
const REACTIONS = ["👍", "❤️", "😂", "😮", "🎉"];

const audiences = { contacts: "toContacts", everyone: "toEveryone", public: "toPublic" };

/** A share's thumbnail, made by the node once it has the share (a clean placeholder until
 *  then, or when there is none). */
function thumbOf(sphere, hash, kind, alt) {
  const icon = mediaIcon(kind || "other");
  if (kind !== "image" && kind !== "video") return h("span", { class: "thumb" }, icon);
  return h("span", { class: "thumb" }, h("img", { src: `/api/spheres/${enc(sphere)}/shares/${hash}/thumb`, alt, loading: "lazy",
    onerror: (/** @type {Event} */ ev) => /** @type {HTMLElement} */ (ev.target).replaceWith(icon) }));
}

/** Who a post is for, in words. */
function audienceOf(p) {
  if (p.sphere) return t("toSphere", { name: p.sphere });
  return t(audiences[p.audience] || "toContacts");
}

/** A text as the node read its little markup (strong, em, code, web addresses), as elements
 *  and text: never markup. A link is made only of an http or https address, and carries no
 *  referrer and no trust.
 *  @param {{ mark: string, text: string }[]} spans */
function rich(spans) {
  return spans.map((s) => {
    if (s.mark === "strong") return h("strong", {}, s.text);
    if (s.mark === "em") return h("em", {}, s.text);
    if (s.mark === "code") return h("code", {}, s.text);
    if (s.mark === "link" && /^https?:\/\//.test(s.text)) return h("a", { href: s.text, rel: "nofollow noopener noreferrer" }, s.text);
    return s.text;
  });
}

/** Who wrote a post: "you", or their name as a link to their page. */
function byline(p) {
  if (p.mine) return h("strong", {}, t("online_you"));
  return h("a", { href: `#/people/${enc(p.author)}` }, h("strong", {}, p.author_name || p.author));
}

/** Someone's page: their posts, newest first, read from their account. */
function person(el, jid, life) {
  const list = h("ol", { class: "posts" });
  el.replaceChildren(h("p", {}, h("a", { href: "#/feed" }, "← " + t("feed"))), h("h1", {}, jid), list);
  async function draw() {
    const posts = await api(`/people/${enc(jid)}/posts`, { signal: life.signal });
    list.replaceChildren(...(posts.length ? posts.map((p) => {
      const when = new Date(p.published * 1000);
      return h("li", { class: "post" }, h("p", { class: "post-head" },
        h("span", { class: "muted" }, audienceOf(p)), " ",
        h("time", { datetime: when.toISOString() }, dateTime(when))), h("p", { class: "post-text" }, ...rich(p.rich)));
    }) : [h("li", { class: "empty" }, t("noPostsOf"))]));
  }
  draw().catch(failLoad);
  return () => life.end();
}
