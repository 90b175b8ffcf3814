// Home: the spheres, invitations waiting, and a form to make a new sphere.
import { api, fail, failLoad, get } from "../api.js";
import { h, say } from "../dom.js";
import { on } from "../events.js";
import { dateTime, t } from "../i18n.js";
import { enc, scope } from "../util.js";

export function mount(el) {
  const life = scope();
  const { signal } = life;

  const input = h("input", { id: "new-sphere", name: "name", required: true, autocomplete: "off" });
  const sealed = h("input", { type: "checkbox", id: "new-sphere-encrypted", name: "encrypted", checked: true });
  const form = h("form", { class: "create", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("/spheres", { method: "POST", json: { name: input.value, encrypted: sealed.checked }, signal });
      say(t("created", { name: input.value }));
      location.hash = `#/s/${enc(input.value)}`;
    } catch (e) { fail(e); }
  } },
    h("label", { for: "new-sphere" }, t("sphereName")), input,
    h("label", { class: "check" }, sealed, " ", t("encrypted")),
    h("small", { class: "meta" }, t("encryptedHelp")),
    h("button", { type: "submit" }, t("create")));
  const title = h("h1", {}, t("spheres"));
  const newTitle = h("h2", {}, t("newSphere"));

  // What lies between the title and the new sphere's form is drawn again on each change; the
  // form stays, so a name being typed survives a live update.
  let drawn = null;
  let latest = 0;
  async function draw() {
    const mine = ++latest;
    const [status, spheres, invites] = await Promise.all([
      get.status(signal), get.spheres(signal), get.invites(signal)]);
    // A slower draw never paints over a newer one.
    if (mine !== latest) return;
    document.getElementById("who").textContent = status.jid;
    const counts = Object.fromEntries((status.spheres || []).map((s) => [s.name, s]));
    const list = spheres.length
      ? h("ul", { class: "spheres" }, spheres.map((s) => {
          /** @type {Partial<import("../../types/api").SphereSummary>} */
          const c = counts[s.name] || {};
          const seen = Number(localStorage.getItem(`seen:${s.name}`) || 0);
          const unread = Math.max(0, (c.messages || 0) - seen);
          return h("li", {}, h("a", { href: `#/s/${enc(s.name)}`, class: "sphere-card" },
            h("strong", {}, s.name),
            unread ? h("span", { class: "badge" }, t("unread", { n: unread })) : null,
            c.last_activity ? h("time", { class: "meta", datetime: new Date(c.last_activity * 1000).toISOString() },
              dateTime(new Date(c.last_activity * 1000))) : null,
            h("span", {}, t("shares", { n: c.shares ?? 0 })),
            h("span", {}, t("online", { n: c.members_online ?? 0 })),
            c.in_call ? h("span", { class: "tag live" }, "📞 " + t("sphereInCall", { n: c.in_call })) : null,
            s.owned ? h("span", { class: "tag" }, t("yours")) : null,
            s.encryption === "open" ? null : h("span", { class: "tag", title: t("encryptedHelp") }, "🔒 " + t("encrypted"))));
        }))
      : h("p", {}, t("noSpheres"));
    const pending = invites.length ? [h("h2", {}, t("invitations")), h("ul", { class: "invites" }, invites.map((i) => {
      const sphere = i.reason || i.room;
      return h("li", {}, t("invitedBy", { sphere, who: i.from_jid }), i.seeder ? [" ", h("small", { class: "meta" }, t("invitedAsSeeder"))] : null, " ", h("button", { type: "button", onclick: async () => {
        try {
          const s = await api("/invites/join", { method: "POST", json: { invite: i.room }, signal });
          location.hash = `#/s/${enc(s.name)}`;
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
    const parts = [invited, ...pending, list].filter(Boolean);
    if (drawn) {
      for (const node of drawn) node.remove();
      title.after(...parts);
    } else {
      el.replaceChildren(title, ...parts, newTitle, form);
    }
    drawn = parts;
  }

  draw().catch(failLoad);
  const again = () => draw().catch(failLoad);
  life.add(on(["share", "presence", "invite", "sphere", "message", "resync", "call"], () => life.soon(again)));
  return () => life.end();
}
