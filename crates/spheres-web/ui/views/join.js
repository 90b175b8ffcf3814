// Joining with an invitation link, on one screen: paste the link (or arrive with it in the
// address, #/join?link=...), see what it offers, give a name; the node makes the account,
// starts again as it and joins the sphere by itself; the page waits for the sphere.
import { api, fail, get } from "../api.js";
import { h, say } from "../dom.js";
import { t } from "../i18n.js";
import { expectRestart } from "../events.js";
import { restartAhead, waitForRestart } from "../restart.js";
import { enc, scope } from "../util.js";

function userOf(name) { return name.trim().split(/\s+/).join(".").toLowerCase(); }

export function mount(el, { link: prefill }) {
  const life = scope();
  const { signal } = life;
  const link = h("textarea", { id: "link", rows: 3, required: true, autocomplete: "off", spellcheck: "false" });
  const offer = h("p", { id: "offer", class: "offer", "aria-live": "polite" });
  const name = h("input", { id: "your-name", autocomplete: "name", required: true, "aria-describedby": "name-help" });
  const help = h("p", { id: "name-help", class: "meta" }, t("yourNameHelp", { user: "…" }));
  const button = h("button", { type: "submit", disabled: true }, t("joinButton"));
  let preview = null;
  let latest = 0;
  // What the link offers, asked again as it is typed; a slower answer never wins over a newer.
  const look = async () => {
    const mine = ++latest;
    preview = null;
    button.disabled = true;
    offer.textContent = "";
    if (!link.value.trim()) return;
    try {
      const p = await api("/link/preview", { method: "POST", json: { link: link.value }, signal });
      if (mine !== latest) return;
      if (!p.can_join) { offer.textContent = p.why_not; return; }
      preview = p;
      offer.textContent = t("linkOffer", { owner: p.owner, sphere: p.sphere });
      button.disabled = false;
    } catch (e) {
      if (!life.ended && mine === latest) offer.textContent = e.message;
    }
  };
  link.addEventListener("input", look);
  name.addEventListener("input", () => { help.textContent = t("yourNameHelp", { user: name.value.trim() ? `${userOf(name.value)}@${preview?.domain ?? "…"}` : "…" }); });
  const form = h("form", { class: "join", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!preview) return;
    const sphere = preview.sphere;
    button.disabled = true;
    restartAhead(life);
    try {
      await api("/link/join", { method: "POST", json: { link: link.value, name: name.value }, signal });
    } catch (e) {
      if (life.ended) return;
      // A network error here is the node already restarting: carry on waiting for it.
      if (!(e instanceof TypeError)) { expectRestart(false); button.disabled = false; fail(e); return; }
    }
    el.replaceChildren(h("h1", {}, t("joinTitle")), h("p", {}, t("joining", { sphere })),
      h("progress", { "aria-label": t("joinTitle") }));
    // The node starts again as the new account, then joins by itself: wait for the sphere.
    await waitForRestart(life, async () => {
      const s = (await get.spheres(signal))[0];
      if (!s) return false;
      say("");
      location.hash = `#/s/${enc(s.name)}`;
      return true;
    });
  } },
    h("label", { for: "link" }, t("linkLabel")), link, offer,
    h("label", { for: "your-name" }, t("yourName")), name, help, button);
  el.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("joinTitle")), form);
  if (prefill) { link.value = prefill; look().then(() => { if (!life.ended) name.focus(); }); } else link.focus();
  return () => life.end();
}
