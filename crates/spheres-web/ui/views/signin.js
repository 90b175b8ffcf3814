// Signing in with an existing XMPP account, on a fresh node: the node checks the account,
// saves it and starts again as it; the page waits for it, then goes home.
import { api, fail, get } from "../api.js";
import { h, say } from "../dom.js";
import { t } from "../i18n.js";
import { expectRestart } from "../events.js";
import { restartAhead, waitForRestart } from "../restart.js";
import { go } from "../router.js";
import { scope } from "../util.js";

export function mount(el) {
  const life = scope();
  const { signal } = life;
  const jid = h("input", { id: "jid", autocomplete: "username", required: true, inputmode: "email", spellcheck: "false" });
  const pw = h("input", { id: "xmpp-password", type: "password", autocomplete: "current-password", required: true });
  const server = h("input", { id: "server", autocomplete: "off", placeholder: "xmpp.example.org:5222" });
  const button = h("button", { type: "submit" }, t("signIn"));
  const form = h("form", { class: "join", onsubmit: async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    let who = jid.value.trim();
    restartAhead(life);
    try {
      who = (await api("/account/sign-in", { method: "POST", json: { jid: jid.value, password: pw.value, server: server.value || null }, signal })).jid;
    } catch (e) {
      if (life.ended) return;
      // A network error here is the node already restarting: carry on waiting for it.
      if (!(e instanceof TypeError)) { expectRestart(false); button.disabled = false; fail(e); return; }
    }
    el.replaceChildren(h("h1", {}, t("signInTitle")), h("p", {}, t("signingIn", { jid: who })),
      h("progress", { "aria-label": t("signInTitle") }));
    await waitForRestart(life, async () => {
      const st = await get.status(signal);
      if (st.jid !== who) return false;
      say("");
      go("#/");
      return true;
    });
  } },
    h("label", { for: "jid" }, t("address")), jid,
    h("label", { for: "xmpp-password" }, t("password")), pw,
    h("label", { for: "server" }, t("serverOpt")), server, button);
  el.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("signInTitle")), form);
  jid.focus();
  return () => life.end();
}
