// Chats: contacts (with their presence), contact requests to accept, and adding a contact.
import { api, fail, failLoad, get } from "../api.js";
import { h } from "../dom.js";
import { on } from "../events.js";
import { t } from "../i18n.js";
import { enc, scope } from "../util.js";

export function mount(el) {
  const life = scope();
  const { signal } = life;

  const jid = h("input", { id: "contact-jid", autocomplete: "off", required: true });
  const add = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    try { await api("/contacts", { method: "POST", json: { jid: jid.value }, signal }); jid.value = ""; await draw(); } catch (e) { fail(e); }
  } }, h("label", { for: "contact-jid" }, t("contactJid")), jid, h("button", { type: "submit" }, t("add")));
  const top = [h("p", {}, h("a", { href: "#/" }, "← " + t("back"))), h("h1", {}, t("chats"))];
  const bottom = [h("h2", {}, t("addContact")), add];

  // Requests and contacts are drawn again on each change; the form to add one stays, so an
  // address being typed survives a live update.
  let drawn = null;
  let latest = 0;
  async function draw() {
    const mine = ++latest;
    const { contacts, requests } = await get.contacts(signal);
    if (mine !== latest) return;
    const asks = requests.map((r) => h("li", {}, t("wantsYou", { who: r }), " ",
      h("button", { type: "button", onclick: async () => {
        try { await api("/contacts", { method: "POST", json: { jid: r }, signal }); await draw(); } catch (e) { fail(e); }
      } }, t("accept"))));
    const list = contacts.length
      ? h("ul", { class: "members" }, contacts.map((c) => h("li", {},
          h("span", { class: c.online ? "dot on" : "dot", "aria-hidden": "true" }),
          h("a", { href: `#/chat/${enc(c.jid)}` }, c.name || c.jid))))
      : h("p", {}, t("noContacts"));
    const parts = [asks.length ? h("ul", { class: "invites" }, asks) : null, h("h2", {}, t("contacts")), list].filter(Boolean);
    if (drawn) {
      for (const node of drawn) node.remove();
      top[top.length - 1].after(...parts);
    } else {
      el.replaceChildren(...top, ...parts, ...bottom);
    }
    drawn = parts;
  }

  draw().catch(failLoad);
  const again = () => draw().catch(failLoad);
  life.add(on(["contacts", "resync"], () => life.soon(again)));
  return () => life.end();
}
