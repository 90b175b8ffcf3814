// Settings: the account, the node's network (refreshed when reachability changes), the
// bandwidth limits, the web password, export and import, logging out.
import { api, fail, failLoad, get, putFile } from "../api.js";
import { relayOnly, relayReach, setRelayOnly } from "../call.js";
import { h, say } from "../dom.js";
import { on } from "../events.js";
import { t } from "../i18n.js";
import { route } from "../router.js";
import { scope, size } from "../util.js";

function reachText(r) {
  if (r.state === "mapped") return t("r_mapped", { addr: r.external, how: r.method });
  if (r.state === "loopback-only") return t("r_loopback");
  if (r.state === "unreachable" || r.state === "double-nat") return t("r_unreachable", { why: r.why });
  return t("r_unknown");
}

/** How far links reach, in words. @param {import("../../types/api").WebAddress} w */
function webText(w) {
  const url = { url: w.url };
  return { public: t("w_public", url), internet: t("w_internet", url), network: t("w_network", url), computer: t("w_computer", url) }[w.reach];
}

const row = (k, v) => [h("dt", {}, k), h("dd", {}, v ?? "—")];
const limit = (v) => (v ? `${size(v)}/s` : t("unlimited"));

function networkList(s) {
  return h("dl", {}, row(t("web"), s.http), row(t("bittorrent"), s.listen), row(t("tracker"), s.tracker), row(t("folder"), s.spheres_dir),
    row(t("limits"), `${t("down")} ${limit(s.download_limit)}, ${t("up")} ${limit(s.upload_limit)}`),
    row(t("reachable"), reachText(s.reachability || {})),
    s.web ? row(t("linksReach"), webText(s.web)) : [],
    s.web?.https ? row(t("httpsLabel"), s.web.https.certified ? t("httpsCertified", { addr: s.web.https.addr }) : t("httpsWaiting", { addr: s.web.https.addr })) : []);
}

export function mount(el) {
  const life = scope();
  const { signal } = life;
  let network = null; // the network section's list, replaced on its own

  async function draw() {
    const s = await get.status(signal);
    network = networkList(s);
    const list = [
      h("h2", {}, t("account")), h("dl", {}, row(t("account"), s.jid)),
      s.household ? [h("h2", {}, t("household")), h("dl", {}, row(t("household"), `${s.household.domain} (${s.household.c2s})`))] : [],
      h("h2", {}, t("network")), network,
    ];
    const pw = h("input", { id: "new-password", type: "password", autocomplete: "new-password", minlength: 8, required: true });
    // Once a password is set, changing it takes the current one.
    const cur = s.web_password ? h("input", { id: "current-password", type: "password", autocomplete: "current-password", required: true }) : null;
    const pwForm = h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("/password", { method: "POST", json: { password: pw.value, current: cur ? cur.value : null }, signal });
        pw.value = ""; if (cur) cur.value = ""; say(t("passwordSaved"));
      } catch (e) { fail(e); }
    } }, cur ? [h("label", { for: "current-password" }, t("currentPassword")), cur] : [],
      h("label", { for: "new-password" }, t("setPassword")), pw, h("button", { type: "submit" }, t("savePassword")));
    const out = h("button", { type: "button", onclick: async () => {
      await api("/logout", { method: "POST", json: {}, signal }).catch(() => {});
      if (!life.ended) route();
    } }, t("logout"));
    const kb = (v) => (v ? String(Math.round(v / 1000)) : "");
    const down = h("input", { id: "down-limit", type: "number", min: 1, inputmode: "numeric", value: kb(s.download_limit) });
    const up = h("input", { id: "up-limit", type: "number", min: 1, inputmode: "numeric", value: kb(s.upload_limit) });
    const bytes = (input) => (input.value ? Number(input.value) * 1000 : null);
    const limitsForm = h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("/limits", { method: "POST", json: { download: bytes(down), upload: bytes(up) }, signal });
        say(t("limitsSaved"));
        await draw();
      } catch (e) { fail(e); }
    } }, h("label", { for: "down-limit" }, t("downLimit")), down, h("label", { for: "up-limit" }, t("upLimit")), up,
      h("button", { type: "submit" }, t("saveLimits")));
    // Export: a download (the node writes the archive as it goes). Import: an archive sent
    // with its progress, then what was done and what was not.
    const archive = h("input", { id: "import-file", type: "file", accept: ".tar,application/x-tar", required: true });
    const sent = h("progress", { max: 1, value: 0, hidden: true, "aria-label": t("importing") });
    const report = h("ul", { class: "report", "aria-live": "polite" });
    const importForm = h("form", { onsubmit: async (ev) => {
      ev.preventDefault();
      const file = archive.files?.[0];
      if (!file) return;
      sent.max = file.size || 1; sent.value = 0; sent.hidden = false;
      try {
        /** @type {import("../../types/api").Imported} */
        const r = await putFile("/api/import", file, (n) => { sent.value = n; }, signal);
        report.replaceChildren(h("li", {}, t("imported", { contacts: r.contacts_asked, spheres: r.spheres_made, members: r.members_invited, files: r.files_restored, posts: r.posts_restored })),
          ...r.not_done.map((n) => h("li", {}, t(`notDone_${n.kind}`, { name: n.name }) + (n.detail ? ` (${n.detail})` : ""))));
      } catch (e) { fail(e); } finally { sent.hidden = true; }
    } }, h("label", { for: "import-file" }, t("importFrom")), archive, sent, h("button", { type: "submit" }, t("import")));
    // Calls: this browser's address hidden from the other side (always through a relay).
    const hide = h("input", { id: "calls-relay-only", type: "checkbox", checked: relayOnly(), onchange: () => setRelayOnly(hide.checked) });
    // Whether calls get through routers: the relay the XMPP server offers, and how far it
    // reaches.
    const relay = h("p", { id: "calls-relay" });
    relayReach(signal).then((r) => { relay.textContent = r; }).catch(() => {});
    const calls = [h("h2", {}, t("callsSettings")), relay,
      h("p", {}, hide, " ", h("label", { for: "calls-relay-only" }, t("callsRelayOnly"))),
      h("p", { class: "meta" }, t("callsRelayOnlyHelp"))];
    const data = [h("h2", {}, t("yourData")),
      h("p", {}, h("a", { href: "/api/export", download: "" }, t("exportAll"))), importForm, report];
    el.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("settings")), ...list.flat(),
      h("h2", {}, t("limits")), limitsForm, ...calls, h("h2", {}, t("password")), pwForm, ...data, h("p", {}, out));
  }

  /** Only the network section: the forms keep what is being typed. */
  async function refreshNetwork() {
    const s = await get.status(signal);
    const fresh = networkList(s);
    network.replaceWith(fresh);
    network = fresh;
  }

  draw().catch(failLoad);
  // Reachability changed: the network section. The stream lagged or came back: the same, or
  // the whole page if it could not be drawn yet.
  const again = () => (network ? refreshNetwork() : draw()).catch(failLoad);
  life.add(on(["network", "resync"], () => life.soon(again)));
  return () => life.end();
}
