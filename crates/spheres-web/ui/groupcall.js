// Calls in a sphere (issue 17): any member starts one from the sphere's page; the others see
// it there, live, and join. Each page in the call holds one browser-to-browser connection
// with every other one (a mesh of six at most), so sound and video go straight between the
// browsers, encrypted end to end. The node says who is in the call
// (`/api/spheres/{name}/call`) and carries each connection's signalling, as a leg in
// `/api/calls` (tagged with the sphere) that this page moves on like a one-to-one call.
import { api, fail } from "./api.js";
import { button, canCall, duration, leg, media, relayedPath, relays, step, TAB, watchPath, whyNoCall } from "./call.js";
import { h, say } from "./dom.js";
import { on } from "./events.js";
import { t } from "./i18n.js";
import { enc } from "./util.js";

/** @typedef {import("../types/api").SphereCall} SphereCall */
/** @typedef {import("../types/api").CallInfo} CallInfo */

/** The sphere call this page is in, with its media and its connections. */
let group = null;

/** How to name `jid` among `all`: its user name, or the whole address when another has the
 *  same user name (alice@home.test and alice@elsewhere.example are not one person). */
function who(jid, all = []) {
  const user = jid.split("@")[0];
  return all.some((o) => o !== jid && o.split("@")[0] === user) ? jid : user;
}

/** The call in `sphere` this page is in, if it is. */
export function inCall(sphere) { return !!group && group.sphere === sphere; }

/** Joins (or starts) `sphere`'s call, with video or not. */
export async function joinSphereCall(sphere, video) {
  if (group) { if (group.sphere !== sphere) say(t("callAlready")); return; }
  if (!canCall()) { say(whyNoCall()); return; }
  let stream;
  try { stream = await media(video); } catch (e) { fail(e); return; }
  try {
    const ice = await relays();
    /** @type {SphereCall} */
    const info = await api(`/spheres/${enc(sphere)}/call`, { method: "POST", json: { video, tab: TAB } });
    group = { sphere, stream, ice, video, info, legs: new Map(), panel: null, started: Date.now(), timer: 0, off: null, alive: 0 };
    const g = group;
    g.alive = setInterval(() => stillHere(g), 15000);
    g.timer = setInterval(() => {
      if (group !== g) return;
      render();
      for (const l of g.legs.values()) watchPath(l, render);
    }, 1000);
    g.off = on(["call", "presence", "resync"], (e) => {
      if (e.type === "presence" && e.sphere !== g.sphere) return;
      look(g);
    });
    render();
    await look(g);
  } catch (e) {
    stream.getTracks().forEach((tr) => tr.stop());
    fail(e);
  }
}

/** Leaves the call this page is in. */
export async function leaveSphereCall() {
  const g = group;
  if (!g) return;
  end(g);
  try { await api(`/spheres/${enc(g.sphere)}/call/leave`, { method: "POST", json: { tab: TAB } }); } catch (e) { fail(e); }
}

function end(g) {
  if (group !== g) return;
  group = null;
  clearInterval(g.alive);
  clearInterval(g.timer);
  g.off?.();
  for (const l of g.legs.values()) { l.gone = true; l.pc?.close(); }
  g.stream.getTracks().forEach((tr) => tr.stop());
  g.panel?.remove();
}

/** Whether this page is still the one in the call, as the node says (`info`); when it is not
 *  (another page of ours took it, or the node left it for us), the page lets it go. */
function stillOurs(g, info) {
  if (info.joined && info.tab === TAB) return true;
  end(g);
  say(t("groupCallTakenOver"));
  return false;
}

/** Tells the node this page is still in the call (unless another page of ours took it). */
async function stillHere(g) {
  try {
    /** @type {SphereCall} */
    const now = await api(`/spheres/${enc(g.sphere)}/call`);
    if (group !== g) return;
    if (!stillOurs(g, now)) return;
    g.info = await api(`/spheres/${enc(g.sphere)}/call`, { method: "POST", json: { video: g.video, tab: TAB } });
  } catch (e) { console.debug("spheres: the call's keep-alive did not go", e); }
}

let looking = false, again = false;
/** Reads who is in the call and this page's connections, and moves each one on. */
async function look(g) {
  if (looking) { again = true; return; }
  looking = true;
  try {
    /** @type {[SphereCall, CallInfo[]]} */
    const [info, calls] = await Promise.all([api(`/spheres/${enc(g.sphere)}/call`), api("/calls")]);
    if (group !== g) return;
    g.info = info;
    if (!stillOurs(g, info)) return;
    const mine = calls.filter((c) => c.sphere === g.sphere && c.tab === TAB);
    for (const call of mine) {
      let l = g.legs.get(call.id);
      if (call.state === "ended") {
        if (l) { l.gone = true; l.pc?.close(); g.legs.delete(call.id); }
        continue;
      }
      if (!l) {
        l = leg(call, g.stream, g.ice, () => render(), () => {
          const state = l.pc?.connectionState;
          if (state === "connected" && !l.connectedAt) {
            l.connectedAt = Date.now();
            relayedPath(l.pc).then((yes) => { l.relayed = yes; render(); });
          }
          // A connection that failed and stays so is dropped: the node opens it again.
          if (state === "failed") {
            const it = l;
            setTimeout(() => {
              if (!it.gone && it.pc?.connectionState === "failed") api(`/calls/${enc(it.id)}/hangup`, { method: "POST" }).catch(() => {});
            }, 5000);
          }
          render();
        });
        l.receiveVideo = true;
        g.legs.set(call.id, l);
      }
      const it = l;
      it.steps = it.steps.then(() => step(it, call)).catch((e) => fail(e));
    }
    // Legs the node no longer lists (long ended) go too.
    for (const id of [...g.legs.keys()]) if (!mine.some((c) => c.id === id)) { const l = g.legs.get(id); l.gone = true; l.pc?.close(); g.legs.delete(id); }
    render();
  } catch (e) {
    console.debug("spheres: the sphere's call not read", e);
  } finally {
    looking = false;
    if (again) { again = false; if (group) look(group); }
  }
}

function tile(id, label, stream, muted, state) {
  let v = /** @type {HTMLVideoElement} */ (document.getElementById(id));
  if (!v) v = /** @type {HTMLVideoElement} */ (h("video", { id, autoplay: true, playsinline: true, "aria-label": label }));
  v.muted = muted;
  if (stream && v.srcObject !== stream) v.srcObject = stream;
  // Someone without video (or not yet): their initial where the picture would be.
  const still = !stream || !stream.getVideoTracks().some((tr) => tr.enabled);
  return h("figure", { class: "call-tile" }, v, still ? h("span", { class: "call-initial", "aria-hidden": "true" }, label.slice(0, 1).toUpperCase()) : null,
    h("figcaption", {}, label, state ? h("span", { class: "meta" }, " · ", state) : null));
}

/** Draws the call's panel: everyone's video, what the path is, the controls. */
function render() {
  const g = group;
  if (!g) return;
  if (!g.panel) {
    g.panel = h("section", { id: "sphere-call", class: "call group-call", role: "region", "aria-labelledby": "sphere-call-title" });
    document.body.append(g.panel);
  }
  const tiles = [tile("call-me", t("groupCallYouLabel"), g.stream, true, "")];
  const all = [...g.legs.values()].map((l) => l.call.with);
  for (const l of g.legs.values()) {
    const pc = l.pc?.connectionState;
    const state = pc === "connected" ? (l.relayed ? t("groupCallRelayed") : t("groupCallConnected", { time: duration(Date.now() - l.connectedAt) }))
      : pc === "failed" ? t("callFailedPath") : t("callConnecting");
    tiles.push(tile(`call-leg-${l.id}`, who(l.call.with, all), l.remote, false, state));
  }
  const audio = g.stream.getAudioTracks()[0];
  const video = g.stream.getVideoTracks()[0];
  const actions = h("div", { class: "call-actions" },
    audio ? button(audio.enabled ? t("callMute") : t("callUnmute"), () => { audio.enabled = !audio.enabled; render(); }) : null,
    video ? button(video.enabled ? t("callCameraOff") : t("callCameraOn"), () => { video.enabled = !video.enabled; render(); }) : null,
    button(t("groupCallLeave"), () => leaveSphereCall(), "danger"));
  g.panel.replaceChildren(
    h("h2", { id: "sphere-call-title" }, t("groupCallIn", { sphere: g.sphere }), " · ", duration(Date.now() - g.started)),
    h("div", { class: "call-grid" }, ...tiles),
    h("p", { id: "sphere-call-status", class: "meta", role: "status" }, g.legs.size ? t("groupCallDirect") : t("groupCallAlone")),
    actions);
}

/** The bar on a sphere's page: start a call, see the one that is on and join it. */
export function callBar(sphere, signal) {
  const el = h("section", { id: "call-bar", class: "call-bar", "aria-label": t("groupCallBar") });
  async function refresh() {
    /** @type {SphereCall} */
    const info = await api(`/spheres/${enc(sphere)}/call`, { signal });
    const others = info.people.filter((p) => !p.me);
    const names = others.map((p) => who(p.jid, others.map((o) => o.jid))).join(", ");
    const parts = [];
    if (inCall(sphere)) {
      parts.push(h("span", {}, "📞 ", others.length ? t("groupCallWith", { who: names }) : t("groupCallAlone")));
    } else if (!canCall()) {
      if (others.length) parts.push(h("span", {}, "📞 ", t("groupCallOn", { who: names }), " "));
      parts.push(h("span", { class: "meta" }, whyNoCall()));
    } else if (info.joined) {
      parts.push(h("span", {}, "📞 ", t("groupCallElsewhere"), " "),
        button(t("groupCallJoinHere"), () => joinSphereCall(sphere, info.video).then(() => refresh()).catch(fail), "primary"));
    } else if (others.length >= info.max) {
      parts.push(h("span", {}, "📞 ", t("groupCallOn", { who: names }), " "), h("span", { class: "meta" }, t("groupCallFull", { max: info.max })));
    } else if (others.length) {
      parts.push(h("span", {}, "📞 ", t("groupCallOn", { who: names }), " "),
        button(t("groupCallJoin"), () => joinSphereCall(sphere, true).then(() => refresh()).catch(fail), "primary"), " ",
        button(t("groupCallJoinAudio"), () => joinSphereCall(sphere, false).then(() => refresh()).catch(fail)));
    } else {
      parts.push(button("📞 " + t("groupCallStart"), () => joinSphereCall(sphere, false).then(() => refresh()).catch(fail)), " ",
        button("🎥 " + t("groupCallStartVideo"), () => joinSphereCall(sphere, true).then(() => refresh()).catch(fail)));
    }
    el.classList.toggle("live", others.length > 0 || inCall(sphere));
    el.replaceChildren(...parts);
  }
  return { el, refresh };
}

/** Calls on in spheres whose page is not open: a notice over any view, with "Join". Shown
 *  once per call (until it ends, or is dismissed). */
const noticed = new Map(); // sphere -> "shown" | "dismissed"
let noticeTimer = 0;
async function lookForCalls() {
  /** @type {import("../types/api").Status} */
  const status = await api("/status");
  const on = (status.spheres || []).filter((s) => s.in_call > 0);
  for (const name of [...noticed.keys()]) if (!on.some((s) => s.name === name)) noticed.delete(name);
  const here = decodeURIComponent((location.hash.match(/^#\/s\/([^/]+)$/) || [])[1] || "");
  const next = on.find((s) => !inCall(s.name) && s.name !== here && !noticed.has(s.name));
  const notice = document.getElementById("call-notice");
  if (notice && (!on.some((s) => s.name === notice.dataset.sphere) || inCall(notice.dataset.sphere || ""))) notice.remove();
  if (!next || !canCall() || document.getElementById("call-notice")) return;
  noticed.set(next.name, "shown");
  /** @type {SphereCall} */
  const info = await api(`/spheres/${enc(next.name)}/call`);
  const jids = info.people.filter((p) => !p.me).map((p) => p.jid);
  const names = jids.map((j) => who(j, jids)).join(", ");
  const box = h("section", { id: "call-notice", class: "call call-notice", role: "region", "aria-label": t("groupCallBar"), "data-sphere": next.name },
    h("p", {}, "📞 ", t("groupCallNotice", { sphere: next.name, who: names })),
    h("div", { class: "call-actions" },
      button(t("groupCallJoin"), () => { box.remove(); location.hash = `#/s/${enc(next.name)}`; joinSphereCall(next.name, true).catch(fail); }, "primary"),
      button(t("groupCallJoinAudio"), () => { box.remove(); location.hash = `#/s/${enc(next.name)}`; joinSphereCall(next.name, false).catch(fail); }),
      button(t("close"), () => { noticed.set(next.name, "dismissed"); box.remove(); })));
  document.body.append(box);
}

/** A page that goes away leaves its sphere call (the others would see a silent tile); calls
 *  that start in spheres show a notice wherever the page is. */
export function watchSphereCalls() {
  const soon = () => {
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => lookForCalls().catch((e) => console.debug("spheres: calls not looked at", e)), 300);
  };
  on(["presence", "call", "resync"], soon);
  window.addEventListener("hashchange", soon);
  soon();
  window.addEventListener("pagehide", () => {
    if (group) fetch(`/api/spheres/${enc(group.sphere)}/call/leave`, { method: "POST", keepalive: true, headers: { "X-Spheres": "1", "Content-Type": "application/json" }, body: JSON.stringify({ tab: TAB }) }).catch(() => {});
  });
}
