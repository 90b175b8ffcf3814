// A 1:1 conversation with a contact.
import { api, fail, failLoad, get } from "../api.js";
import { canCall, duration, startCall, whyNoCall } from "../call.js";
import { h } from "../dom.js";
import { on } from "../events.js";
import { t } from "../i18n.js";
import { enc, scope } from "../util.js";

export function mount(el, { jid }) {
  const life = scope();
  const { signal } = life;
  const list = h("ul", { id: "conversation", class: "messages", "aria-live": "polite" });
  // Whether what we write goes end to end encrypted (their account has a spheres node) or in
  // clear, as with any XMPP client.
  const security = h("p", { class: "meta", id: "chat-security" });

  async function refresh() {
    const [msgs, sec] = await Promise.all([get.chat(jid, signal), get.chatSecurity(jid, signal)]);
    security.textContent = sec.encrypted ? "🔒 " + t("chatEncrypted") : t("chatPlain", { who: jid });
    security.classList.toggle("warn", !sec.encrypted);
    list.replaceChildren(...(msgs.length ? msgs.map((m) => m.call ? callLine(m) : h("li", { class: m.mine ? "mine" : "" },
      h("strong", {}, m.mine ? t("online_you") : jid.split("@")[0]), " ",
      m.encrypted ? h("span", { class: "lock", title: t("lineEncrypted"), "aria-label": t("lineEncrypted") }, "🔒 ") : null,
      m.unreadable ? h("em", {}, t("lineUnreadable")) : h("span", {}, m.body))) : [h("li", { class: "empty" }, t("noMessages"))]));
    list.scrollTop = list.scrollHeight;
  }

  /** A call in the conversation: who called, how it went, how long. */
  function callLine(m) {
    const c = m.call;
    const v = { who: m.mine ? t("online_you") : jid.split("@")[0] };
    const what = {
      answered: () => c.video ? t("callLineVideo", v) : t("callLineAudio", v),
      declined: () => t("callLineDeclined", v),
      missed: () => t("callLineMissed", v),
      no_answer: () => t("callLineNoAnswer", v),
    }[c.outcome] || (() => t("callLineAudio", v));
    return h("li", { class: "call-line" + (m.mine ? " mine" : "") },
      h("span", { "aria-hidden": "true" }, "📞 "), what(),
      c.seconds !== undefined ? ` · ${duration(c.seconds * 1000)}` : "");
  }

  const msg = h("input", { id: "chat-say", autocomplete: "off", required: true });
  // Calls from the conversation: audio, or video.
  const callable = canCall();
  const calls = h("p", { class: "call-buttons" },
    h("button", { type: "button", onclick: () => startCall(jid, false), disabled: !callable }, h("span", { "aria-hidden": "true" }, "📞 "), t("callAudio")),
    h("button", { type: "button", onclick: () => startCall(jid, true), disabled: !callable }, h("span", { "aria-hidden": "true" }, "🎥 "), t("callVideo")),
    callable ? null : h("span", { class: "meta" }, " " + whyNoCall()));
  el.replaceChildren(h("p", {}, h("a", { href: "#/chats" }, "← " + t("back2"))), h("h1", {}, t("chatWith", { who: jid })),
    calls, security,
    h("section", { class: "chat" }, list,
      h("form", { onsubmit: async (ev) => {
        ev.preventDefault();
        try { await api(`/chats/${enc(jid)}`, { method: "POST", json: { body: msg.value }, signal }); msg.value = ""; } catch (e) { fail(e); }
      } }, h("label", { for: "chat-say", class: "sr" }, t("say")), msg, h("button", { type: "submit" }, t("send")))));

  refresh().catch(failLoad);
  const again = () => refresh().catch(failLoad);
  life.add(on(["chat", "call", "resync"], (e) => {
    // The conversation is read from the archive: 300 ms after the event, as it always was.
    // A call's ringing messages are in it too.
    if (e.type === "chat" && e.with === jid) life.later(again, 300);
    if (e.type === "call") life.soon(again);
    if (e.type === "resync") life.soon(again);
  }));
  return () => life.end();
}
