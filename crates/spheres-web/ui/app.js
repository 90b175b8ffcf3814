// The spheres web interface: no framework, no build step, no CDN. It talks to the node's
// JSON API on the same origin and listens to /api/events for live changes.

const TEXT = {
  en: {
    brand: "spheres", language: "Language", download: "Download", previous: "Previous",
    next: "Next", close: "Close", spheres: "Your spheres", noSpheres: "No sphere yet. Make one for your family or friends.",
    newSphere: "New sphere", sphereName: "Name of the sphere", create: "Create",
    shares: "{n} shares", online: "{n} online", yours: "yours", back: "All spheres",
    dropHere: "Drop photos, videos or folders here, or", choose: "choose files",
    uploading: "Sending {name}", chat: "Chat", say: "Message", send: "Send",
    members: "Members", invite: "Invite", inviteJid: "Their address (name@server)",
    inviteLink: "Invitation link", inviteLinkHelp: "For someone with no account: send them this link. On their computer they start spheres, choose “Join with your invitation link” and paste it. It works once.",
    copy: "Copy", copied: "Copied", nothingYet: "Nothing shared yet.", from: "from {who}",
    state_seeding: "Ready", state_downloading: "Downloading", state_available: "Not fetched",
    state_withdrawn: "Withdrawn", state_failed: "Failed", state_hashing: "Preparing",
    fetch: "Fetch", files: "{n} files", error: "Something went wrong: {msg}",
    reconnecting: "Connection to your node lost; reconnecting…", online_you: "you",
    noMessages: "No messages yet.", invited: "Invited {who}", created: "Created {name}",
    invitations: "Invitations", invitedBy: "{sphere}, from {who}", join: "Join {sphere}",
    settings: "Settings", account: "Account", network: "Network", household: "Household server",
    web: "Web interface", bittorrent: "BitTorrent", tracker: "Tracker", folder: "Spheres folder",
    limits: "Bandwidth", unlimited: "unlimited", down: "download", up: "upload",
    policy: "Fetch automatically", policy_all: "everything", policy_1g: "up to 1 GB each",
    policy_none: "nothing (on demand)", speed: "{rate}/s · peers: {n}", here: "On this computer: {path}",
    login: "Log in", password: "Password", loginHelp: "Enter this node's web password. On the node's own computer, open the link that `spheres up` printed, or run `spheres open` for a new one.",
    currentPassword: "Current password",
    setPassword: "Web password for your other devices", savePassword: "Save the password", passwordSaved: "Password saved",
    logout: "Log out", chats: "Chats", contacts: "Contacts", addContact: "Add a contact",
    contactJid: "Their address (name@server)", add: "Add", wantsYou: "{who} wants to be your contact",
    accept: "Accept", noContacts: "No contacts yet.", chatWith: "Chat with {who}", back2: "All chats",
    unread: "{n} new", qr: "QR code of the invitation link", reachable: "Reachable from outside",
    r_mapped: "yes, {addr} (forwarded by the router, {how})", r_loopback: "only from this computer",
    r_unreachable: "no: {why}", r_unknown: "not known yet", downLimit: "Download limit (kB/s, empty: none)",
    upLimit: "Upload limit (kB/s, empty: none)", saveLimits: "Save the limits", limitsSaved: "Limits saved",
    invitedQ: "Were you invited by someone?", useLink: "Join with your invitation link",
    joinTitle: "Join with an invitation", linkLabel: "Invitation link (starts with spheres:join)",
    linkOffer: "{owner} invites you to the sphere “{sphere}”.", yourName: "Your name",
    yourNameHelp: "Your family sees it; it becomes your account name ({user}).",
    joinButton: "Join", joining: "Creating your account and joining “{sphere}”… this takes a few seconds.",
    joinSlow: "Your node has not come back with the sphere yet. Keep this page open, or reload it in a minute.",
    noSpace: "{name} needs {need} but the node's disk has {free} free. Free some space, then send it again.",
    openLinkHelp: "If spheres already runs on their computer, this link opens it there with the invitation filled in:", openLink: "join link for their browser",
    linkLocal: "This household server only answers on this computer, so the link works here only. For the family's other computers, start spheres with --xmpp-listen 0.0.0.0.",
    haveAccount: "Already have an XMPP account (Snikket, Prosody, ejabberd…)?", useAccount: "Sign in with it",
    signInTitle: "Sign in with your XMPP account", address: "Your address (name@server)",
    serverOpt: "Server (host:port), only if your provider gave you one", signIn: "Sign in",
    signingIn: "Signing in as {jid}… your node restarts with this account.",
    otherDevices: "To open spheres from your phone or another computer, set a password in", 
  },
  fr: {
    brand: "spheres", language: "Langue", download: "Télécharger", previous: "Précédent",
    next: "Suivant", close: "Fermer", spheres: "Vos sphères", noSpheres: "Pas encore de sphère. Créez-en une pour votre famille ou vos amis.",
    newSphere: "Nouvelle sphère", sphereName: "Nom de la sphère", create: "Créer",
    shares: "{n} partages", online: "{n} en ligne", yours: "la vôtre", back: "Toutes les sphères",
    dropHere: "Déposez ici photos, vidéos ou dossiers, ou", choose: "choisissez des fichiers",
    uploading: "Envoi de {name}", chat: "Discussion", say: "Message", send: "Envoyer",
    members: "Membres", invite: "Inviter", inviteJid: "Son adresse (nom@serveur)",
    inviteLink: "Lien d'invitation", inviteLinkHelp: "Pour quelqu'un sans compte : envoyez-lui ce lien. Sur son ordinateur, il ou elle lance spheres, choisit « Rejoindre avec votre lien d'invitation » et le colle. Il ne sert qu'une fois.",
    copy: "Copier", copied: "Copié", nothingYet: "Rien n'est encore partagé.", from: "de {who}",
    state_seeding: "Prêt", state_downloading: "Téléchargement", state_available: "Non récupéré",
    state_withdrawn: "Retiré", state_failed: "Échec", state_hashing: "Préparation",
    fetch: "Récupérer", files: "{n} fichiers", error: "Un problème est survenu : {msg}",
    reconnecting: "Connexion au nœud perdue ; reconnexion…", online_you: "vous",
    noMessages: "Pas encore de message.", invited: "{who} est invité·e", created: "{name} créée",
    invitations: "Invitations", invitedBy: "{sphere}, de la part de {who}", join: "Rejoindre {sphere}",
    settings: "Réglages", account: "Compte", network: "Réseau", household: "Serveur du foyer",
    web: "Interface web", bittorrent: "BitTorrent", tracker: "Tracker", folder: "Dossier des sphères",
    limits: "Débit", unlimited: "illimité", down: "réception", up: "envoi",
    policy: "Récupérer automatiquement", policy_all: "tout", policy_1g: "jusqu'à 1 Go chacun",
    policy_none: "rien (à la demande)", speed: "{rate}/s · pairs : {n}", here: "Sur cet ordinateur : {path}",
    login: "Se connecter", password: "Mot de passe", loginHelp: "Entrez le mot de passe web de ce nœud. Sur l'ordinateur du nœud, ouvrez le lien affiché par `spheres up`, ou lancez `spheres open` pour en obtenir un nouveau.",
    currentPassword: "Mot de passe actuel",
    setPassword: "Mot de passe web pour vos autres appareils", savePassword: "Enregistrer le mot de passe", passwordSaved: "Mot de passe enregistré",
    logout: "Se déconnecter", chats: "Discussions", contacts: "Contacts", addContact: "Ajouter un contact",
    contactJid: "Son adresse (nom@serveur)", add: "Ajouter", wantsYou: "{who} souhaite être votre contact",
    accept: "Accepter", noContacts: "Pas encore de contact.", chatWith: "Discussion avec {who}", back2: "Toutes les discussions",
    unread: "{n} non lus", qr: "QR code du lien d'invitation", reachable: "Joignable de l'extérieur",
    r_mapped: "oui, {addr} (redirigé par la box, {how})", r_loopback: "seulement depuis cet ordinateur",
    r_unreachable: "non : {why}", r_unknown: "pas encore connu", downLimit: "Limite de réception (ko/s, vide : aucune)",
    upLimit: "Limite d'envoi (ko/s, vide : aucune)", saveLimits: "Enregistrer les limites", limitsSaved: "Limites enregistrées",
    invitedQ: "Quelqu'un vous a invité·e ?", useLink: "Rejoindre avec votre lien d'invitation",
    joinTitle: "Rejoindre avec une invitation", linkLabel: "Lien d'invitation (commence par spheres:join)",
    linkOffer: "{owner} vous invite dans la sphère « {sphere} ».", yourName: "Votre nom",
    yourNameHelp: "Votre famille le voit ; il devient votre nom de compte ({user}).",
    joinButton: "Rejoindre", joining: "Création de votre compte et entrée dans « {sphere} »… quelques secondes.",
    joinSlow: "Votre nœud n'est pas encore revenu avec la sphère. Gardez cette page ouverte, ou rechargez-la dans une minute.",
    noSpace: "{name} demande {need} mais le disque du nœud n'a que {free} de libre. Libérez de la place, puis renvoyez-le.",
    openLinkHelp: "Si spheres tourne déjà sur son ordinateur, ce lien l'y ouvre avec l'invitation déjà remplie :", openLink: "lien d'entrée pour son navigateur",
    linkLocal: "Ce serveur du foyer ne répond que sur cet ordinateur : le lien ne marche qu'ici. Pour les autres ordinateurs de la famille, lancez spheres avec --xmpp-listen 0.0.0.0.",
    haveAccount: "Vous avez déjà un compte XMPP (Snikket, Prosody, ejabberd…) ?", useAccount: "Connectez-vous avec",
    signInTitle: "Connexion avec votre compte XMPP", address: "Votre adresse (nom@serveur)",
    serverOpt: "Serveur (hôte:port), seulement si votre fournisseur vous en a donné un", signIn: "Se connecter",
    signingIn: "Connexion en tant que {jid}… votre nœud redémarre avec ce compte.",
    otherDevices: "Pour ouvrir spheres depuis votre téléphone ou un autre ordinateur, choisissez un mot de passe dans",
  },
};

let lang = localStorage.getItem("lang") || (navigator.language || "en").slice(0, 2);
if (!TEXT[lang]) lang = "en";

function t(key, vars = {}) {
  const s = (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

function translateStatic() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  document.getElementById("lang").value = lang;
}

/** Decimal units, as file managers show them. */
function size(bytes) {
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let v = bytes, u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return u === 0 ? `${v} ${units[0]}` : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

async function api(path, opts = {}) {
  const init = { ...opts, headers: { ...(opts.headers || {}) } };
  if (init.method && init.method !== "GET") init.headers["X-Spheres"] = "1";
  if (init.json !== undefined) {
    init.body = JSON.stringify(init.json);
    init.headers["Content-Type"] = "application/json";
    delete init.json;
  }
  const res = await fetch("/api" + path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error(body.error || res.statusText);
    e.login = res.status === 401 && body.login;
    throw e;
  }
  return body;
}

function h(tag, attrs = {}, ...children) {
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

function say(msg) { document.getElementById("live").textContent = msg; }
function fail(e) { say(t("error", { msg: e.message })); }

const app = document.getElementById("app");
let current = { view: null, sphere: null, shares: [], refresh: null };
// Each render takes a number; one that finds a newer render started while it waited stops,
// so a slow refresh never paints over the page the person went to since.
let generation = 0;

// Placeholder glyphs as inline SVG (emoji fonts are not everywhere).
const GLYPHS = {
  video: '<path d="M9 7l9 5-9 5z"/>',
  audio: '<path d="M10 17a2 2 0 1 1-2-2h2V6l7-2v10a2 2 0 1 1-2-2h2V6l-7 2z"/>',
  image: '<path d="M4 18l5-6 4 4 2-2 5 4z"/><circle cx="15" cy="8" r="2"/>',
  document: '<path d="M7 3h7l4 4v14H7z"/>',
  archive: '<path d="M5 5h14v4H5zM6 10h12v10H6z"/>',
  other: '<path d="M4 8l8-4 8 4v8l-8 4-8-4z"/>',
};
function mediaIcon(media) {
  const span = h("span", { class: "glyph" });
  span.innerHTML = `<svg viewBox="0 0 24 24" width="48" height="48" fill="currentColor" aria-hidden="true">${GLYPHS[media] || GLYPHS.other}</svg>`;
  return span;
}

function streamUrl(hash, index = 0) { return `/torrents/${hash}/files/${index}`; }

// ---------- Home: the spheres ----------
async function renderHome() {
  const mine = ++generation;
  current = { view: "home" };
  const [status, spheres, invites] = await Promise.all([api("/status"), api("/spheres"), api("/invites")]);
  if (mine !== generation) return;
  document.getElementById("who").textContent = status.jid;
  const counts = Object.fromEntries((status.spheres || []).map((s) => [s.name, s]));
  const input = h("input", { id: "new-sphere", name: "name", required: true, autocomplete: "off" });
  const form = h("form", { class: "create", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("/spheres", { method: "POST", json: { name: input.value } });
      say(t("created", { name: input.value }));
      location.hash = `#/s/${encodeURIComponent(input.value)}`;
    } catch (e) { fail(e); }
  } },
    h("label", { for: "new-sphere" }, t("sphereName")), input, h("button", { type: "submit" }, t("create")));
  const list = spheres.length
    ? h("ul", { class: "spheres" }, spheres.map((s) => {
        const c = counts[s.name] || {};
        const seen = Number(localStorage.getItem(`seen:${s.name}`) || 0);
        const unread = Math.max(0, (c.messages || 0) - seen);
        return h("li", {}, h("a", { href: `#/s/${encodeURIComponent(s.name)}`, class: "sphere-card" },
          h("strong", {}, s.name),
          unread ? h("span", { class: "badge" }, t("unread", { n: unread })) : null,
          c.last_activity ? h("time", { class: "meta", datetime: new Date(c.last_activity * 1000).toISOString() },
            new Date(c.last_activity * 1000).toLocaleString(lang)) : null,
          h("span", {}, t("shares", { n: c.shares ?? 0 })),
          h("span", {}, t("online", { n: c.members_online ?? 0 })),
          s.owned ? h("span", { class: "tag" }, t("yours")) : null));
      }))
    : h("p", {}, t("noSpheres"));
  const pending = invites.length ? [h("h2", {}, t("invitations")), h("ul", { class: "invites" }, invites.map((i) => {
    const sphere = i.reason || i.room;
    return h("li", {}, t("invitedBy", { sphere, who: i.from_jid }), " ", h("button", { type: "button", onclick: async () => {
      try {
        const s = await api("/invites/join", { method: "POST", json: { invite: i.room } });
        location.hash = `#/s/${encodeURIComponent(s.name)}`;
      } catch (e) { fail(e); }
    } }, t("join", { sphere })));
  }))] : [];
  // A fresh node (its own household, no sphere yet) may belong to someone who was invited.
  const invited = !spheres.length && status.household
    ? h("div", { class: "invited" },
        h("p", {}, t("invitedQ"), " ", h("a", { href: "#/join" }, t("useLink"))),
        h("p", {}, t("haveAccount"), " ", h("a", { href: "#/signin" }, t("useAccount"))),
        status.web_password ? null : h("p", {}, t("otherDevices"), " ", h("a", { href: "#/settings" }, t("settings")), "."))
    : null;
  app.replaceChildren(h("h1", {}, t("spheres")), invited, ...pending, list, h("h2", {}, t("newSphere")), form);
}

// ---------- Signing in with an existing XMPP account ----------
function renderSignIn() {
  ++generation;
  current = { view: "signin" };
  const jid = h("input", { id: "jid", autocomplete: "username", required: true, inputmode: "email", spellcheck: "false" });
  const pw = h("input", { id: "xmpp-password", type: "password", autocomplete: "current-password", required: true });
  const server = h("input", { id: "server", autocomplete: "off", placeholder: "xmpp.example.org:5222" });
  const button = h("button", { type: "submit" }, t("signIn"));
  const form = h("form", { class: "join", onsubmit: async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    let who = jid.value.trim();
    try {
      who = (await api("/account/sign-in", { method: "POST", json: { jid: jid.value, password: pw.value, server: server.value || null } })).jid;
    } catch (e) {
      // A network error here is the node already restarting: carry on waiting for it.
      if (!(e instanceof TypeError)) { button.disabled = false; fail(e); return; }
    }
    current = { view: "joining" };
    app.replaceChildren(h("h1", {}, t("signInTitle")), h("p", {}, t("signingIn", { jid: who })),
      h("progress", { "aria-label": t("signInTitle") }));
    await backAs((st) => st.jid === who);
  } },
    h("label", { for: "jid" }, t("address")), jid,
    h("label", { for: "xmpp-password" }, t("password")), pw,
    h("label", { for: "server" }, t("serverOpt")), server, button);
  app.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("signInTitle")), form);
  jid.focus();
}

/** Waits (bounded) for the node to come back from its restart, as `ready(status)` says,
 *  then goes home. From another device the restarted node asks for the password again. */
async function backAs(ready) {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 1000));
    let st = null;
    try { st = await api("/status"); } catch (e) { if (e.login) { renderLogin(); return; } }
    if (st && ready(st)) { say(""); location.hash = "#/"; route(); return; }
  }
  if (current.view === "joining") say(t("joinSlow"));
}

// ---------- Joining with an invitation link: one screen ----------
function userOf(name) { return name.trim().split(/\s+/).join(".").toLowerCase(); }

async function renderJoin(prefill) {
  const mine = ++generation;
  current = { view: "join" };
  const link = h("textarea", { id: "link", rows: 3, required: true, autocomplete: "off", spellcheck: "false" });
  const offer = h("p", { id: "offer", class: "offer", "aria-live": "polite" });
  const name = h("input", { id: "your-name", autocomplete: "name", required: true, "aria-describedby": "name-help" });
  const help = h("p", { id: "name-help", class: "meta" }, t("yourNameHelp", { user: "…" }));
  const button = h("button", { type: "submit", disabled: true }, t("joinButton"));
  let preview = null;
  const look = async () => {
    preview = null;
    button.disabled = true;
    offer.textContent = "";
    if (!link.value.trim()) return;
    try {
      const p = await api("/link/preview", { method: "POST", json: { link: link.value } });
      if (mine !== generation) return;
      if (!p.can_join) { offer.textContent = p.why_not; return; }
      preview = p;
      offer.textContent = t("linkOffer", { owner: p.owner, sphere: p.sphere });
      button.disabled = false;
    } catch (e) { offer.textContent = e.message; }
  };
  link.addEventListener("input", look);
  name.addEventListener("input", () => { help.textContent = t("yourNameHelp", { user: name.value.trim() ? `${userOf(name.value)}@${preview?.domain ?? "…"}` : "…" }); });
  const form = h("form", { class: "join", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!preview) return;
    const sphere = preview.sphere;
    button.disabled = true;
    try {
      await api("/link/join", { method: "POST", json: { link: link.value, name: name.value } });
    } catch (e) {
      // A network error here is the node already restarting: carry on waiting for it.
      if (!(e instanceof TypeError)) { button.disabled = false; fail(e); return; }
    }
    current = { view: "joining" };
    app.replaceChildren(h("h1", {}, t("joinTitle")), h("p", {}, t("joining", { sphere })),
      h("progress", { "aria-label": t("joinTitle") }));
    // The node starts again as the new account, then joins by itself: wait for the sphere.
    const until = Date.now() + 120_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      let spheres = null;
      try { spheres = await api("/spheres"); } catch (e) { if (e.login) { renderLogin(); return; } }
      const s = spheres && spheres[0];
      if (s) { say(""); location.hash = `#/s/${encodeURIComponent(s.name)}`; return; }
    }
    if (current.view === "joining") say(t("joinSlow"));
  } },
    h("label", { for: "link" }, t("linkLabel")), link, offer,
    h("label", { for: "your-name" }, t("yourName")), name, help, button);
  app.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("joinTitle")), form);
  if (prefill) { link.value = prefill; await look(); name.focus(); } else link.focus();
}

// ---------- A sphere: gallery, chat, members ----------
function progressOf(s) {
  const total = s.total_bytes || s.size || 0;
  return total ? Math.min(100, Math.round((s.have_bytes || 0) * 100 / total)) : 0;
}

function shareCard(s, index) {
  const pct = progressOf(s);
  const ready = s.state === "seeding";
  const icon = h("span", { class: "icon", "aria-hidden": "true" }, mediaIcon(s.media));
  // Made by the node once the share is complete; the icon stays if there is none.
  const thumb = ready && (s.media === "image" || s.media === "video")
    ? h("img", { src: `/api/spheres/${enc(current.sphere)}/shares/${s.info_hash}/thumb`, alt: "", loading: "lazy",
        onerror: (ev) => ev.target.replaceWith(icon) })
    : icon;
  const stateText = t(`state_${s.state}`) + (s.state === "downloading" ? ` ${pct}%` : "");
  return h("li", { class: `card ${s.state}` },
    h("button", { type: "button", class: "open", "data-index": index, onclick: () => openViewer(index),
      disabled: !s.info_hash || s.state === "available" || s.state === "hashing" },
      h("span", { class: "thumb" }, thumb),
      h("span", { class: "name" }, s.name)),
    h("span", { class: "meta" }, `${size(s.total_bytes || s.size || 0)}${s.files > 1 ? " · " + t("files", { n: s.files }) : ""}`),
    h("span", { class: "meta" }, t("from", { who: s.sharer || "" })),
    h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": s.name },
      h("span", { style: `width:${pct}%` })),
    h("span", { class: "state" }, stateText),
    s.state === "downloading" && s.download_bps ? h("span", { class: "meta" }, t("speed", { rate: size(s.download_bps), n: s.peers })) : null,
    s.state === "available" ? h("button", { type: "button", onclick: async () => {
      try { await api(`/spheres/${enc(current.sphere)}/fetch`, { method: "POST", json: { share: s.info_hash } }); refreshShares(); } catch (e) { fail(e); }
    } }, t("fetch")) : null);
}

function enc(s) { return encodeURIComponent(s); }

async function refreshShares() {
  if (current.view !== "sphere") return;
  const shares = await api(`/spheres/${enc(current.sphere)}/shares`);
  current.shares = shares;
  const grid = document.getElementById("gallery");
  if (!grid) return;
  grid.replaceChildren(...(shares.length ? shares.map(shareCard) : [h("li", { class: "empty" }, t("nothingYet"))]));
}

async function refreshChat() {
  if (current.view !== "sphere") return;
  const msgs = await api(`/spheres/${enc(current.sphere)}/messages`);
  const status = await api("/status");
  const here = (status.spheres || []).find((x) => x.name === current.sphere);
  if (here) localStorage.setItem(`seen:${current.sphere}`, String(here.messages));
  const list = document.getElementById("messages");
  if (!list) return;
  list.replaceChildren(...(msgs.length ? msgs.map((m) => h("li", { class: m.mine ? "mine" : "" },
    h("strong", {}, m.nick), " ", h("span", {}, m.body))) : [h("li", { class: "empty" }, t("noMessages"))]));
  list.scrollTop = list.scrollHeight;
}

async function refreshMembers() {
  if (current.view !== "sphere") return;
  const members = await api(`/spheres/${enc(current.sphere)}/members`);
  const list = document.getElementById("members");
  if (!list) return;
  list.replaceChildren(...members.map((m) => h("li", {},
    h("span", { class: m.online ? "dot on" : "dot", "aria-hidden": "true" }), `${m.jid} `,
    h("span", { class: "sr" }, m.online ? "online" : "offline"))));
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

function put(url, file, onprogress) {
  return new Promise((ok, ko) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("X-Spheres", "1");
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) onprogress(ev.loaded); };
    xhr.onload = () => {
      if (xhr.status < 300) return ok();
      let m = xhr.statusText; try { m = JSON.parse(xhr.responseText).error; } catch {}
      ko(new Error(m));
    };
    xhr.onerror = () => ko(new Error(file.name));
    xhr.send(file);
  });
}

/** Sends files (and folders, as {file, path} lists) into the sphere: streamed, with progress;
 *  the node shares each top-level file or folder once all of it is there. */
async function upload(items) {
  if (!items.length) return;
  const total = items.reduce((n, i) => n + i.file.size, 0);
  const label = items.length === 1 ? items[0].path : items[0].path.split("/")[0];
  const bar = h("progress", { max: total || 1, value: 0, "aria-label": label });
  const row = h("li", {}, t("uploading", { name: label }), " ", bar);
  document.getElementById("uploads").append(row);
  const batch = batchId();
  const base = `/spheres/${enc(current.sphere)}/upload/${batch}`;
  let done = 0;
  try {
    // Said before anything is sent: the node's disk cannot take it.
    const { free } = await api(`/spheres/${enc(current.sphere)}/space`);
    if (total > free) throw new Error(t("noSpace", { name: label, need: size(total), free: size(free) }));
    for (const { file, path } of items) {
      await put(`/api${base}/files/${path.split("/").map(enc).join("/")}`, file, (n) => { bar.value = done + n; });
      done += file.size;
      bar.value = done;
    }
    await api(`${base}/done`, { method: "POST", json: {} });
  } catch (e) {
    fail(e);
    // What arrived of an upload that did not finish is not kept.
    api(`${base}/cancel`, { method: "POST", json: {} }).catch(() => {});
  }
  row.remove();
}

async function renderSphere(name) {
  ++generation;
  current = { view: "sphere", sphere: name, shares: [] };
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
    t("dropHere"), " ", h("label", { for: "file-input", class: "link" }, t("choose")), fileInput,
    h("ul", { id: "uploads", class: "uploads" }));
  const msg = h("input", { id: "say", autocomplete: "off", required: true });
  const chat = h("section", { class: "chat", "aria-labelledby": "chat-title" },
    h("h2", { id: "chat-title" }, t("chat")),
    h("ul", { id: "messages", class: "messages", "aria-live": "polite" }),
    h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try { await api(`/spheres/${enc(name)}/messages`, { method: "POST", json: { body: msg.value } }); msg.value = ""; } catch (e) { fail(e); }
    } }, h("label", { for: "say", class: "sr" }, t("say")), msg, h("button", { type: "submit" }, t("send"))));
  const jid = h("input", { id: "invite-jid", autocomplete: "off", required: true });
  const linkOut = h("output", { id: "invite-link", class: "invite-link" });
  const members = h("section", { class: "people", "aria-labelledby": "members-title" },
    h("h2", { id: "members-title" }, t("members")),
    h("ul", { id: "members", class: "members" }),
    h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try { await api(`/spheres/${enc(name)}/invite`, { method: "POST", json: { jid: jid.value } }); say(t("invited", { who: jid.value })); jid.value = ""; refreshMembers(); } catch (e) { fail(e); }
    } }, h("label", { for: "invite-jid" }, t("inviteJid")), jid, h("button", { type: "submit" }, t("invite"))),
    h("button", { type: "button", onclick: async () => {
      try {
        const r = await api(`/spheres/${enc(name)}/invite-link`, { method: "POST", json: {} });
        linkOut.replaceChildren(h("p", {}, t("inviteLinkHelp")),
          r.this_machine_only ? h("p", { class: "warn" }, t("linkLocal")) : null, h("code", {}, r.link),
          h("p", {}, t("openLinkHelp"), " ", h("a", { href: r.open, id: "open-link" }, t("openLink"))),
          h("img", { class: "qr", src: `/api/qr?text=${encodeURIComponent(r.link)}`, alt: t("qr"), width: 256, height: 256 }), " ",
          h("button", { type: "button", onclick: async () => { await navigator.clipboard?.writeText(r.link); say(t("copied")); } }, t("copy")));
      } catch (e) { fail(e); }
    } }, t("inviteLink")), linkOut);
  const spheres = await api("/spheres");
  const me = spheres.find((x) => x.name === name) || {};
  const policy = h("select", { id: "policy", onchange: async (ev) => {
    try { await api(`/spheres/${enc(name)}/policy`, { method: "POST", json: { policy: ev.target.value } }); } catch (e) { fail(e); }
  } },
    h("option", { value: "all" }, t("policy_all")),
    h("option", { value: "max:1000000000" }, t("policy_1g")),
    h("option", { value: "none" }, t("policy_none")));
  policy.value = ["all", "none", "max:1000000000"].includes(me.policy) ? me.policy : "all";
  app.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← " + t("back"))),
    h("h1", {}, name),
    h("p", { class: "policy" }, h("label", { for: "policy" }, t("policy") + " "), policy),
    h("div", { class: "sphere" },
      h("section", { class: "main", "aria-labelledby": "gallery-title" },
        h("h2", { id: "gallery-title", class: "sr" }, name), drop, h("ul", { id: "gallery", class: "gallery" })),
      h("aside", {}, chat, members)));
  await Promise.all([refreshShares(), refreshChat(), refreshMembers()]);
}

// ---------- Login (from another device) ----------
function renderLogin(message) {
  ++generation;
  current = { view: "login" };
  const pw = h("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    try { await api("/login", { method: "POST", json: { password: pw.value } }); say(""); route(); } catch (e) { say(e.message); }
  } }, h("label", { for: "password" }, t("password")), pw, h("button", { type: "submit" }, t("login")));
  app.replaceChildren(h("h1", {}, t("login")), h("p", {}, t("loginHelp")), form);
  if (message) say(message);
  pw.focus();
}

// ---------- 1:1 chats ----------
async function renderChats() {
  const mine = ++generation;
  current = { view: "chats" };
  const { contacts, requests } = await api("/contacts");
  if (mine !== generation) return;
  const jid = h("input", { id: "contact-jid", autocomplete: "off", required: true });
  const add = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    try { await api("/contacts", { method: "POST", json: { jid: jid.value } }); jid.value = ""; renderChats(); } catch (e) { fail(e); }
  } }, h("label", { for: "contact-jid" }, t("contactJid")), jid, h("button", { type: "submit" }, t("add")));
  const asks = requests.map((r) => h("li", {}, t("wantsYou", { who: r }), " ",
    h("button", { type: "button", onclick: async () => {
      try { await api("/contacts", { method: "POST", json: { jid: r } }); renderChats(); } catch (e) { fail(e); }
    } }, t("accept"))));
  const list = contacts.length
    ? h("ul", { class: "members" }, contacts.map((c) => h("li", {},
        h("span", { class: c.online ? "dot on" : "dot", "aria-hidden": "true" }),
        h("a", { href: `#/chat/${enc(c.jid)}` }, c.name || c.jid))))
    : h("p", {}, t("noContacts"));
  app.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("chats")),
    asks.length ? h("ul", { class: "invites" }, asks) : null, h("h2", {}, t("contacts")), list, h("h2", {}, t("addContact")), add);
}

async function refreshConversation() {
  if (current.view !== "chat") return;
  const msgs = await api(`/chats/${enc(current.with)}`);
  const list = document.getElementById("conversation");
  if (!list) return;
  list.replaceChildren(...(msgs.length ? msgs.map((m) => h("li", { class: m.mine ? "mine" : "" },
    h("strong", {}, m.mine ? t("online_you") : current.with.split("@")[0]), " ", h("span", {}, m.body))) : [h("li", { class: "empty" }, t("noMessages"))]));
  list.scrollTop = list.scrollHeight;
}

async function renderChat(withJid) {
  ++generation;
  current = { view: "chat", with: withJid };
  const msg = h("input", { id: "chat-say", autocomplete: "off", required: true });
  app.replaceChildren(h("p", {}, h("a", { href: "#/chats" }, "← " + t("back2"))), h("h1", {}, t("chatWith", { who: withJid })),
    h("section", { class: "chat" }, h("ul", { id: "conversation", class: "messages", "aria-live": "polite" }),
      h("form", { onsubmit: async (ev) => {
        ev.preventDefault();
        try { await api(`/chats/${enc(withJid)}`, { method: "POST", json: { body: msg.value } }); msg.value = ""; } catch (e) { fail(e); }
      } }, h("label", { for: "chat-say", class: "sr" }, t("say")), msg, h("button", { type: "submit" }, t("send")))));
  await refreshConversation();
}

// ---------- Settings ----------
function reachText(r) {
  if (r.state === "mapped") return t("r_mapped", { addr: r.external, how: r.method });
  if (r.state === "loopback-only") return t("r_loopback");
  if (r.state === "unreachable" || r.state === "double-nat") return t("r_unreachable", { why: r.why });
  return t("r_unknown");
}

async function renderSettings() {
  ++generation;
  current = { view: "settings" };
  const s = await api("/status");
  const limit = (v) => (v ? `${size(v)}/s` : t("unlimited"));
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v ?? "—")];
  const list = [
    h("h2", {}, t("account")), h("dl", {}, row(t("account"), s.jid)),
    s.household ? [h("h2", {}, t("household")), h("dl", {}, row(t("household"), `${s.household.domain} (${s.household.c2s})`))] : [],
    h("h2", {}, t("network")),
    h("dl", {}, row(t("web"), s.http), row(t("bittorrent"), s.listen), row(t("tracker"), s.tracker), row(t("folder"), s.spheres_dir),
      row(t("limits"), `${t("down")} ${limit(s.download_limit)}, ${t("up")} ${limit(s.upload_limit)}`),
      row(t("reachable"), reachText(s.reachability || {}))),
  ];
  const pw = h("input", { id: "new-password", type: "password", autocomplete: "new-password", minlength: 8, required: true });
  // Once a password is set, changing it takes the current one.
  const cur = s.web_password ? h("input", { id: "current-password", type: "password", autocomplete: "current-password", required: true }) : null;
  const pwForm = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("/password", { method: "POST", json: { password: pw.value, current: cur ? cur.value : null } });
      pw.value = ""; if (cur) cur.value = ""; say(t("passwordSaved"));
    } catch (e) { fail(e); }
  } }, cur ? [h("label", { for: "current-password" }, t("currentPassword")), cur] : [],
    h("label", { for: "new-password" }, t("setPassword")), pw, h("button", { type: "submit" }, t("savePassword")));
  const out = h("button", { type: "button", onclick: async () => { await api("/logout", { method: "POST", json: {} }).catch(() => {}); route(); } }, t("logout"));
  const kb = (v) => (v ? String(Math.round(v / 1000)) : "");
  const down = h("input", { id: "down-limit", type: "number", min: 1, inputmode: "numeric", value: kb(s.download_limit) });
  const up = h("input", { id: "up-limit", type: "number", min: 1, inputmode: "numeric", value: kb(s.upload_limit) });
  const bytes = (input) => (input.value ? Number(input.value) * 1000 : null);
  const limitsForm = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    try { await api("/limits", { method: "POST", json: { download: bytes(down), upload: bytes(up) } }); say(t("limitsSaved")); renderSettings(); } catch (e) { fail(e); }
  } }, h("label", { for: "down-limit" }, t("downLimit")), down, h("label", { for: "up-limit" }, t("upLimit")), up,
    h("button", { type: "submit" }, t("saveLimits")));
  app.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("settings")), ...list.flat(),
    h("h2", {}, t("limits")), limitsForm, h("h2", {}, t("password")), pwForm, h("p", {}, out));
}

// ---------- The viewer ----------
const viewer = document.getElementById("viewer");
let viewing = -1;

function openViewer(index) {
  const s = current.shares[index];
  if (!s || !s.info_hash) return;
  viewing = index;
  const url = streamUrl(s.info_hash);
  document.getElementById("viewer-title").textContent = s.name;
  document.getElementById("viewer-download").href = url;
  let body;
  if (s.media === "video") body = h("video", { src: url, controls: true, playsinline: true, id: "player" });
  else if (s.media === "audio") body = h("audio", { src: url, controls: true, id: "player" });
  else if (s.media === "image" && s.files === 1) body = h("img", { src: url, alt: s.name });
  else body = h("p", {}, h("a", { href: url, download: s.name }, s.name));
  document.getElementById("viewer-body").replaceChildren(body);
  // Started here rather than by the autoplay attribute: with a file still downloading,
  // Chromium's autoplay sometimes waits for the whole file; play() after the click does not.
  if (body.play) body.play().catch(() => {});
  document.getElementById("viewer-path").textContent = s.path ? t("here", { path: s.path }) : "";
  if (!viewer.open) viewer.showModal();
}

function step(delta) {
  const n = current.shares.length;
  for (let i = 1; i <= n; i++) {
    const j = (viewing + delta * i + n * n) % n;
    if (current.shares[j].state === "seeding" || current.shares[j].state === "downloading") { openViewer(j); return; }
  }
}

document.getElementById("viewer-close").addEventListener("click", () => viewer.close());
document.getElementById("viewer-prev").addEventListener("click", () => step(-1));
document.getElementById("viewer-next").addEventListener("click", () => step(1));
viewer.addEventListener("close", () => document.getElementById("viewer-body").replaceChildren());
viewer.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowRight") step(1);
  if (ev.key === "ArrowLeft") step(-1);
});

// ---------- Routing and live updates ----------
async function route() {
  const m = location.hash.match(/^#\/s\/(.+)$/);
  try {
    if (m) await renderSphere(decodeURIComponent(m[1]));
    else if (location.hash === "#/settings") await renderSettings();
    else if (location.hash === "#/chats") await renderChats();
    else if (location.hash === "#/signin") renderSignIn();
    else if (location.hash.startsWith("#/join")) await renderJoin(new URLSearchParams(location.hash.split("?")[1] || "").get("link"));
    else if (location.hash.startsWith("#/chat/")) await renderChat(decodeURIComponent(location.hash.slice(7)));
    else await renderHome();
  } catch (e) { if (e.login) renderLogin(); else fail(e); }
}

// Refreshes asked for in a burst run once, shortly after; each kind of refresh on its own.
const pending = new Map();
function soon(fn) {
  if (pending.has(fn)) return;
  pending.set(fn, setTimeout(() => { pending.delete(fn); fn().catch(fail); }, 150));
}
const homeAgain = async () => { if (current.view === "home") await renderHome(); };
const chatsAgain = async () => { if (current.view === "chats") await renderChats(); };

function listen() {
  const es = new EventSource("/api/events");
  es.onopen = () => { if (document.getElementById("live").textContent === t("reconnecting")) { say(""); route(); } };
  // While joining, the node restarting is expected: the join screen says what happens.
  es.onerror = () => { if (current.view !== "joining") say(t("reconnecting")); };
  es.onmessage = (ev) => {
    let e; try { e = JSON.parse(ev.data); } catch { return; }
    if (current.view === "home" && ["share", "presence", "invite", "sphere", "message"].includes(e.type)) soon(homeAgain);
    if (current.view === "chats" && e.type === "contacts") soon(chatsAgain);
    if (current.view === "chat" && e.type === "chat" && e.with === current.with) setTimeout(() => refreshConversation().catch(fail), 300);
    if (current.view !== "sphere" || (e.sphere && e.sphere !== current.sphere)) return;
    if (e.type === "share" || e.type === "resync") soon(refreshShares);
    if (e.type === "tick" && current.shares.some((s) => s.state === "downloading" || s.state === "hashing")) refreshShares().catch(fail);
    if (e.type === "tick" && document.getElementById("uploads")?.children.length) refreshShares().catch(fail);
    if (e.type === "message") refreshChat().catch(fail);
    if (e.type === "presence") refreshMembers().catch(fail);
  };
}

document.getElementById("lang").addEventListener("change", (ev) => {
  lang = ev.target.value;
  localStorage.setItem("lang", lang);
  translateStatic();
  route();
});
window.addEventListener("hashchange", route);
translateStatic();
route();
listen();
