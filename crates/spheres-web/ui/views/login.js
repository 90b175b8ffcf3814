// Logging in with the web password, from another device (shown whatever the address says
// when the node wants a login; then the address's own view).
import { aborted, api } from "../api.js";
import { h, say } from "../dom.js";
import { reconnect } from "../events.js";
import { t } from "../i18n.js";
import { route } from "../router.js";
import { scope } from "../util.js";

/** @param {HTMLElement} el @param {{ message?: string }} [params] */
export function mount(el, { message } = {}) {
  const life = scope();
  const pw = h("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("/login", { method: "POST", json: { password: pw.value }, signal: life.signal });
      say("");
      // The node refused the event stream before the login; the browser gave up on it.
      reconnect();
      route();
    } catch (e) { if (!aborted(e)) say(e.message); }
  } }, h("label", { for: "password" }, t("password")), pw, h("button", { type: "submit" }, t("login")));
  el.replaceChildren(h("h1", {}, t("login")), h("p", {}, t("loginHelp")), form);
  if (message) say(message);
  pw.focus();
  return () => life.end();
}
