// A sphere: its gallery (with uploads by drop or file picker), its chat and its members.
import { api, fail, failLoad, get, putFile } from "../api.js";
import { h, mediaIcon, say } from "../dom.js";
import { on } from "../events.js";
import { callBar } from "../groupcall.js";
import { dateTime, t } from "../i18n.js";
import { enc, scope, size } from "../util.js";
import * as viewer from "./viewer.js";

/** @typedef {import("../../types/api").LinkInfo} LinkInfo */
/** @typedef {import("../../types/api").ShareInfo} ShareInfo */


function progressOf(s) {
  const total = s.total_bytes || s.size || 0;
  return total ? Math.min(100, Math.round((s.have_bytes || 0) * 100 / total)) : 0;
}

function batchId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** The files under a dropped entry (a file, or a folder walked), with their relative paths. */
async function filesOf(entry, prefix = "") {
  if (entry.isFile) return [{ file: await new Promise((ok, ko) => entry.file(ok, ko)), path: prefix + entry.name }];
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((ok, ko) => reader.readEntries(ok, ko));
    if (!batch.length) break;
    for (const e of batch) out.push(...await filesOf(e, `${prefix}${entry.name}/`));
  }
  return out;
}

const POLICIES = ["all", "none", "max:1000000000"];

export function mount(el, { name }) {
  const life = scope();
  const { signal } = life;
  const base = `/spheres/${enc(name)}`;
  let shares = [];
  // Who may take a share back here: its sharer, and the sphere's owner (not a keyless seeder).
  let myJid = "";
  let owner = false;
  let holding = false;
  let closeViewer = null;
  life.add(() => closeViewer?.());

  function openViewer(index) {
    closeViewer?.();
    closeViewer = viewer.mount(document.getElementById("viewer"), { shares: () => shares, index });
  }

  /** Opens a card: a share the sphere's policy left aside is fetched first, and shown at
   *  once (it plays while it downloads, the pieces the viewer needs first). */
  async function openCard(s, index) {
    if (s.state === "available") {
      try {
        await api(`${base}/fetch`, { method: "POST", json: { share: s.info_hash }, signal });
        await refreshShares();
        index = shares.findIndex((x) => x.info_hash === s.info_hash);
        // Announced by its magnet alone: its metadata comes first, in the background; the
        // card opens once the engine has it.
        if (!shares[index]?.transfer) return;
      } catch (e) { fail(e); return; }
    }
    openViewer(index);
  }

  function shareCard(s, index) {
    const pct = progressOf(s);
    const ready = s.state === "seeding";
    const icon = h("span", { class: "icon", "aria-hidden": "true" }, mediaIcon(s.media));
    // Made by the node once the share is complete; the icon stays if there is none.
    const thumb = ready && (s.media === "image" || s.media === "video")
      ? h("img", { src: `/api${base}/shares/${s.info_hash}/thumb`, alt: "", loading: "lazy",
          onerror: (ev) => ev.target.replaceWith(icon) })
      : icon;
    const stateText = t(`state_${s.state}`) + (s.state === "downloading" ? ` ${pct}%` : "");
    return h("li", { class: `card ${s.state}` },
      h("button", { type: "button", class: "open", "data-index": index, onclick: () => openCard(s, index),
        disabled: !s.info_hash || s.state === "hashing" || s.state === "withdrawn" },
        h("span", { class: "thumb" }, thumb),
        h("span", { class: "name" }, s.name)),
      h("span", { class: "meta" }, `${size(s.total_bytes || s.size || 0)}${s.files > 1 ? " · " + t("files", { n: s.files }) : ""}`),
      h("span", { class: "meta" }, t("from", { who: s.sharer || "" })),
      h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": s.name },
        h("span", { style: `width:${pct}%` })),
      h("span", { class: "state" }, stateText),
      s.state === "downloading" && s.download_bps ? h("span", { class: "meta" }, t("speed", { rate: size(s.download_bps), n: s.peers })) : null,
      s.state === "available" ? h("button", { type: "button", onclick: async () => {
        try { await api(`${base}/fetch`, { method: "POST", json: { share: s.info_hash }, signal }); refreshShares().catch(fail); } catch (e) { fail(e); }
      } }, t("fetch")) : null,
      s.info_hash && !holding && s.state !== "withdrawn" && s.state !== "hashing"
        ? h("button", { type: "button", class: "make-link", onclick: () => makeLink(s) }, t("makeLink")) : null,
      s.info_hash && !holding && s.state !== "withdrawn" && (owner || s.sharer === myJid)
        ? h("button", { type: "button", class: "take-back", onclick: async () => {
          if (!confirm(t("takeBackConfirm", { name: s.name }))) return;
          try {
            await api(`${base}/take-back`, { method: "POST", json: { share: s.info_hash }, signal });
            say(t("tookBack", { name: s.name })); refreshShares().catch(fail);
          } catch (e) { fail(e); }
        } }, t("takeBack")) : null);
  }

  // Links to the sphere's shares that anyone opens in a browser: made with a few choices,
  // listed with what each allows, revoked.
  const shareLink = h("output", { id: "share-link", class: "invite-link" });
  const linkList = h("ul", { id: "links", class: "links" });
  const links = h("section", { class: "people", "aria-labelledby": "links-title", hidden: true },
    h("h2", { id: "links-title" }, t("links")), linkList);
  /** The form that makes a link to share `s`: how long it opens, a password, how many
   *  browsers may open it. */
  function makeLink(s) {
    const expires = h("select", { name: "expires" },
      h("option", { value: String(86400) }, t("linkDay")),
      h("option", { value: String(7 * 86400), selected: true }, t("linkWeek")),
      h("option", { value: String(30 * 86400) }, t("linkMonth")),
      h("option", { value: "" }, t("linkNever")));
    const password = h("input", { type: "text", name: "password", autocomplete: "off", minlength: 6, maxlength: 200 });
    const opens = h("input", { type: "number", name: "opens", min: 1, max: 100000, inputmode: "numeric" });
    const direct = h("input", { type: "checkbox", name: "direct" });
    const form = h("form", { class: "link-form", onsubmit: async (/** @type {Event} */ e) => {
      e.preventDefault();
      try {
        /** @type {LinkInfo} */
        const l = await api("/links", { method: "POST", signal, json: {
          sphere: name, share: s.info_hash,
          expires_in: expires.value ? Number(expires.value) : undefined,
          password: password.value || undefined,
          max_opens: opens.value ? Number(opens.value) : undefined,
          direct: direct.checked } });
        showLink(s, l);
        refreshLinks().catch(fail);
      } catch (err) { fail(err); }
    } },
      h("p", {}, t("linkTo", { name: s.name })),
      h("label", {}, t("linkExpires") + " ", expires),
      h("label", {}, t("linkPassword") + " ", password),
      h("label", {}, t("linkOpens") + " ", opens),
      h("label", {}, direct, " " + t("linkDirect")),
      h("p", {}, h("button", {}, t("makeLinkNow")), " ",
        h("button", { type: "button", class: "secondary", onclick: () => shareLink.replaceChildren() }, t("cancel"))));
    shareLink.replaceChildren(form);
    expires.focus();
  }
  /** A link just made, to copy. @param {ShareInfo} s @param {LinkInfo} l */
  function showLink(s, l) {
    const near = l.reach === "computer" ? t("shareLinkLocal") : l.reach === "network" ? t("shareLinkNetwork") : null;
    shareLink.replaceChildren(h("p", {}, t("linkMade", { name: s.name })),
      h("p", { class: "meta" }, linkTerms(l)),
      near ? h("p", { class: "warn" }, near) : null, h("code", {}, l.url), " ",
      h("button", { type: "button", onclick: async () => { await navigator.clipboard?.writeText(l.url); say(t("copied")); } }, t("copy")));
  }
  /** What a link allows, in words. @param {LinkInfo} l */
  function linkTerms(l) {
    const parts = [];
    if (l.state !== "open") parts.push(l.state === "revoked" ? t("linkRevoked") : t("linkExpired"));
    else parts.push(l.expires ? t("linkUntil", { when: dateTime(new Date(l.expires * 1000)) }) : t("linkUntilRevoked"));
    if (l.password) parts.push(t("linkWithPassword"));
    if (l.max_opens) parts.push(t("linkOpened", { n: l.opens, max: l.max_opens }));
    if (l.direct) parts.push(t("linkFromHere"));
    if (l.state === "open" && (l.reach === "network" || l.reach === "computer")) parts.push(t("linkHereOnly"));
    return parts.join(" · ");
  }
  async function refreshLinks() {
    const all = await get.links(signal);
    const mine = all.filter((l) => l.sphere === name);
    links.hidden = mine.length === 0;
    linkList.replaceChildren(...mine.map((l) => h("li", {},
      h("strong", {}, l.share), " ", h("span", { class: "meta" }, linkTerms(l)), " ",
      l.state === "open" ? h("button", { type: "button", class: "secondary revoke-link", onclick: async () => {
        try {
          await api("/links/revoke", { method: "POST", json: { link: l.url }, signal });
          say(t("linkRevokedSaid", { name: l.share })); refreshLinks().catch(fail);
        } catch (e) { fail(e); }
      } }, t("revoke")) : null)));
  }

  // The parts refreshed on their own.
  const gallery = h("ul", { id: "gallery", class: "gallery" });
  const uploads = h("ul", { id: "uploads", class: "uploads" });
  const messages = h("ul", { id: "messages", class: "messages", "aria-live": "polite" });
  const memberList = h("ul", { id: "members", class: "members" });
  // The sphere's call: start one, or see the one that is on and join it.
  const call = callBar(name, signal);

  async function refreshShares() {
    const list = await get.shares(name, signal);
    shares = list;
    gallery.replaceChildren(...(list.length ? list.map(shareCard) : [h("li", { class: "empty" }, t("nothingYet"))]));
  }

  async function refreshChat() {
    const msgs = await get.messages(name, signal);
    const status = await get.status(signal);
    // What the spheres list counts as read.
    const here = (status.spheres || []).find((x) => x.name === name);
    if (here) localStorage.setItem(`seen:${name}`, String(here.messages));
    messages.replaceChildren(...(msgs.length ? msgs.map((m) => h("li", { class: m.mine ? "mine" : "" },
      h("strong", {}, m.nick), " ", h("span", {}, m.body))) : [h("li", { class: "empty" }, t("noMessages"))]));
    messages.scrollTop = messages.scrollHeight;
  }

  async function refreshMembers() {
    const members = await get.members(name, signal);
    memberList.replaceChildren(...members.map((m) => h("li", {},
      h("span", { class: m.online ? "dot on" : "dot", "aria-hidden": "true" }), `${m.jid} `,
      h("span", { class: "sr" }, m.online ? "online" : "offline"))));
  }

  const policy = h("select", { id: "policy", onchange: async (ev) => {
    try { await api(`${base}/policy`, { method: "POST", json: { policy: ev.target.value }, signal }); } catch (e) { fail(e); }
  } },
    h("option", { value: "all" }, t("policy_all")),
    h("option", { value: "max:1000000000" }, t("policy_1g")),
    h("option", { value: "none" }, t("policy_none")));

  // Whether what is said and shared here is end-to-end encrypted, and whether this node can
  // take part yet.
  const lock = h("p", { class: "meta", id: "encryption" });
  // Inviting a keyless seeder: for the owner of an encrypted sphere.
  const seeder = h("input", { type: "checkbox", id: "invite-seeder" });
  const seederBox = h("span", { hidden: true }, h("label", { class: "check" }, seeder, " ", t("asSeeder")),
    h("small", { class: "meta" }, t("asSeederHelp")));
  async function refreshPolicy() {
    const [list, status] = await Promise.all([get.spheres(signal), get.status(signal)]);
    const me = list.find((x) => x.name === name);
    myJid = status.jid;
    owner = !!me?.owned;
    holding = me?.encryption === "holding";
    policy.value = me && POLICIES.includes(me.policy) ? me.policy : "all";
    const e = me?.encryption || "open";
    lock.textContent = e === "ready" ? "🔒 " + t("encryptedReady")
      : e === "waiting" ? "🔒 " + t("encryptedWaiting")
      : e === "holding" ? "🔒 " + t("encryptedHolding") : t("openSphere");
    seederBox.hidden = !me?.owned || e === "open";
    lock.classList.toggle("warn", e === "waiting");
  }

  /** Sends files (and folders, as {file, path} lists) into the sphere: streamed, with
   *  progress; the node shares each top-level file or folder once all of it is there.
   *  Leaving the page stops it, and what arrived is dropped. */
  async function upload(items) {
    if (!items.length) return;
    const total = items.reduce((n, i) => n + i.file.size, 0);
    const label = items.length === 1 ? items[0].path : items[0].path.split("/")[0];
    const bar = h("progress", { max: total || 1, value: 0, "aria-label": label });
    const row = h("li", {}, t("uploading", { name: label }), " ", bar);
    uploads.append(row);
    const batch = `${base}/upload/${batchId()}`;
    let done = 0;
    try {
      // Said before anything is sent: the node's disk cannot take it.
      const { free } = await get.space(name, signal);
      if (total > free) throw new Error(t("noSpace", { name: label, need: size(total), free: size(free) }));
      for (const { file, path } of items) {
        await putFile(`/api${batch}/files/${path.split("/").map(enc).join("/")}`, file, (n) => { bar.value = done + n; }, signal);
        done += file.size;
        bar.value = done;
      }
      await api(`${batch}/done`, { method: "POST", json: {}, signal });
    } catch (e) {
      fail(e);
      // What arrived of an upload that did not finish is not kept.
      api(`${batch}/cancel`, { method: "POST", json: {} }).catch(() => {});
    }
    row.remove();
  }

  const fileInput = h("input", { type: "file", multiple: true, id: "file-input", class: "sr",
    onchange: (ev) => { for (const f of ev.target.files) upload([{ file: f, path: f.name }]); ev.target.value = ""; } });
  const drop = h("div", { class: "drop", id: "drop",
    ondragover: (ev) => { ev.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: async (ev) => {
      ev.preventDefault();
      drop.classList.remove("over");
      const entries = [...ev.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
      if (entries.length) { for (const e of entries) upload(await filesOf(e)); }
      else for (const f of ev.dataTransfer.files) upload([{ file: f, path: f.name }]);
    } },
    t("dropHere"), " ", h("label", { for: "file-input", class: "link" }, t("choose")), fileInput, uploads);

  const msg = h("input", { id: "say", autocomplete: "off", required: true });
  const chat = h("section", { class: "chat", "aria-labelledby": "chat-title" },
    h("h2", { id: "chat-title" }, t("chat")),
    messages,
    h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try { await api(`${base}/messages`, { method: "POST", json: { body: msg.value }, signal }); msg.value = ""; } catch (e) { fail(e); }
    } }, h("label", { for: "say", class: "sr" }, t("say")), msg, h("button", { type: "submit" }, t("send"))));

  const jid = h("input", { id: "invite-jid", autocomplete: "off", required: true });
  const linkOut = h("output", { id: "invite-link", class: "invite-link" });
  const members = h("section", { class: "people", "aria-labelledby": "members-title" },
    h("h2", { id: "members-title" }, t("members")),
    memberList,
    h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api(`${base}/invite`, { method: "POST", json: { jid: jid.value, seeder: seeder.checked }, signal });
        say(t("invited", { who: jid.value })); jid.value = ""; seeder.checked = false; refreshMembers().catch(fail);
      } catch (e) { fail(e); }
    } }, h("label", { for: "invite-jid" }, t("inviteJid")), jid, seederBox, h("button", { type: "submit" }, t("invite"))),
    h("button", { type: "button", onclick: async () => {
      try {
        const r = await api(`${base}/invite-link`, { method: "POST", json: {}, signal });
        linkOut.replaceChildren(h("p", {}, t("inviteLinkHelp")),
          r.this_machine_only ? h("p", { class: "warn" }, t("linkLocal")) : null, h("code", {}, r.link),
          h("p", {}, t("openLinkHelp"), " ", h("a", { href: r.open, id: "open-link" }, t("openLink"))),
          h("img", { class: "qr", src: `/api/qr?text=${enc(r.link)}`, alt: t("qr"), width: 256, height: 256 }), " ",
          h("button", { type: "button", onclick: async () => { await navigator.clipboard?.writeText(r.link); say(t("copied")); } }, t("copy")));
      } catch (e) { fail(e); }
    } }, t("inviteLink")), linkOut);

  /** Everything: the policy, the page (drawn the first time), the gallery, chat and members. */
  let drawn = false;
  async function load() {
    await refreshPolicy();
    if (!drawn) draw();
    drawn = true;
    await Promise.all([refreshShares(), refreshChat(), refreshMembers(), refreshLinks(), call.refresh()]);
  }

  function draw() {
    el.replaceChildren(
      h("p", {}, h("a", { href: "#/" }, "← " + t("back"))),
      h("h1", {}, name),
      lock,
      call.el,
      h("p", {}, h("a", { href: `#/s/${enc(name)}/photos` }, t("album"))),
      h("p", { class: "policy" }, h("label", { for: "policy" }, t("policy") + " "), policy),
      h("div", { class: "sphere" },
        h("section", { class: "main", "aria-labelledby": "gallery-title" },
          h("h2", { id: "gallery-title", class: "sr" }, name), drop, shareLink, gallery),
        h("aside", {}, chat, members, links)));
  }

  // Live: each part refreshed when the node says it changed, everything when it lagged or the
  // stream came back (`resync`), and the gallery every tick while something moves.
  const sharesSoon = () => refreshShares().catch(failLoad);
  const chatSoon = () => refreshChat().catch(failLoad);
  const membersSoon = () => refreshMembers().catch(failLoad);
  const policySoon = () => refreshPolicy().catch(failLoad);
  const allSoon = () => load().catch(failLoad);
  const callSoon = () => call.refresh().catch(failLoad);
  life.add(on(["share", "message", "presence", "sphere", "tick", "resync", "call"], (e) => {
    if (e.sphere && e.sphere !== name) return;
    if (e.type === "call") life.soon(callSoon);
    if (e.type === "share") life.soon(sharesSoon);
    if (e.type === "message") chatSoon();
    if (e.type === "presence") { membersSoon(); life.soon(callSoon); }
    if (e.type === "sphere") life.soon(policySoon);
    if (e.type === "resync") life.soon(allSoon);
    if (e.type === "tick" && (uploads.children.length || shares.some((s) => s.state === "downloading" || s.state === "hashing"))) sharesSoon();
  }));

  load().catch(failLoad);
  return () => life.end();
}
