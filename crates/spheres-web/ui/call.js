// Calls (issue 17): the browser does the media (WebRTC), the node carries the signalling over
// XMPP (Jingle). One call at a time per page, whatever view is open: the call's panel sits
// over the page. The node keeps each call's state (`/api/calls`): the other side's
// description and candidates arrive there, and a `call` event says when to look again.
//
// This page is the one that handles a call's media when it placed or answered it: its `tab`
// id (new at each load) is what the node checks. Other pages of the same node see the call
// ring, and stop ringing once one of them answers.
import { api, fail } from "./api.js";
import { h, say } from "./dom.js";
import { on } from "./events.js";
import { t } from "./i18n.js";
import { enc } from "./util.js";

/** @typedef {import("../types/api").CallInfo} CallInfo */

// Random, from getRandomValues: randomUUID exists only on secure pages, and this module loads
// on every page (another device's, over plain HTTP, included).
export const TAB = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");

/** The call this page handles, with its media. */
let current = null;
/** Calls this page declined or saw end: not shown again. */
const dismissed = new Set();
let panel = null;
let ringer = null;

/** Whether this page can place a call: browsers give the camera and microphone only to
 *  secure pages (HTTPS, or this computer). */
export function canCall() {
  return !!(window.isSecureContext && navigator.mediaDevices?.getUserMedia && window.RTCPeerConnection);
}

/** Why a call cannot be placed from here, for people. */
export function whyNoCall() {
  return window.isSecureContext ? t("callNoWebrtc") : t("callNeedsSecure");
}

export async function media(video, devices = {}) {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: devices.audio ? { deviceId: { exact: devices.audio } } : true,
      video: video ? (devices.video ? { deviceId: { exact: devices.video } } : { width: 1280, height: 720 }) : false,
    });
  } catch (e) {
    const why = e?.name === "NotAllowedError" ? t("callDenied") : e?.name === "NotFoundError" ? t("callNoDevice") : String(e?.message || e);
    throw new Error(why);
  }
}

/** Calls `jid` (a contact), with video or not. */
export async function startCall(jid, video) {
  if (current) { say(t("callAlready")); return; }
  if (!canCall()) { say(whyNoCall()); return; }
  let stream;
  try { stream = await media(video); } catch (e) { fail(e); return; }
  try {
    const ice = await relays();
    /** @type {CallInfo} */
    const call = await api("/calls", { method: "POST", json: { with: jid, video, tab: TAB } });
    current = fresh(call, stream, ice);
    render(call);
  } catch (e) {
    stream.getTracks().forEach((tr) => tr.stop());
    fail(e);
  }
}

const RELAY_ONLY = "spheres.callsRelayOnly";
/** Whether this browser calls only through a relay (so the other side never sees its
 *  addresses): a choice of this browser's, kept in it. */
export function relayOnly() { return localStorage.getItem(RELAY_ONLY) === "1"; }
export function setRelayOnly(yes) { if (yes) localStorage.setItem(RELAY_ONLY, "1"); else localStorage.removeItem(RELAY_ONLY); }

/** The STUN and TURN servers the node's XMPP server offers (none when it offers none).
 *  Throws when this browser hides its address and there is no relay to hide it behind: the
 *  call would give the address away. */
export async function relays() {
  let ice = [];
  try { ice = await api("/calls/ice"); } catch { ice = []; }
  if (relayOnly() && !hasRelay(ice)) throw new Error(t("callNoRelay"));
  return ice;
}

function hasRelay(ice) { return ice.some((s) => s.urls.some((u) => u.startsWith("turn"))); }

/** How far `host` (an address or a name) is reachable: this computer, this network, or the
 *  internet (a name is taken as public). */
export function reachOf(host) {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || /^127\./.test(h) || h === "::1") return "computer";
  if (/^10\./.test(h) || /^192\.168\./.test(h) || /^172\.(1[6-9]|2\d|3[01])\./.test(h) ||
      /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(h) || /^169\.254\./.test(h) || /^f[cd]/.test(h) || /^fe80:/.test(h)) return "network";
  return "internet";
}

/** Says whether calls get through routers: the relay the node's XMPP server offers (if any)
 *  and how far it reaches (the node says it of the household's relay it runs itself: whether
 *  the home router forwards it). */
export async function relayReach(signal) {
  /** @type {import("../types/api").Status} */
  const status = await api("/status", { signal });
  const own = status.household?.relay;
  if (own?.reach === "internet") return t("callsRelayForwarded", { addr: own.addr, outside: own.outside ?? "" });
  if (own?.reach === "network") return t("callsRelayNetwork", { addr: own.addr }) + (own.asking ? "" : " " + t("callsRelayNotForwarded"));
  /** @type {import("../types/api").IceServerInfo[]} */
  const ice = await api("/calls/ice", { signal });
  const turn = ice.flatMap((s) => s.urls).find((u) => u.startsWith("turn"));
  if (!turn) return t("callsNoRelay");
  const addr = turn.replace(/^turns?:/, "").split("?")[0];
  const host = addr.replace(/:\d+$/, "");
  const reach = reachOf(host);
  return reach === "computer" ? t("callsRelayComputer", { addr })
    : reach === "network" ? t("callsRelayNetwork", { addr })
    : t("callsRelayInternet", { addr });
}

/** One browser-to-browser connection of a call (the call itself, or a leg of a sphere's
 *  call): `onmedia` when the other side's tracks come, `onstate` when the connection moves. */
export function leg(call, stream, ice, onmedia, onstate) {
  return { id: call.id, call, stream, ice, relayed: false, pc: null, remote: null, remoteSet: false, applied: 0, chain: Promise.resolve(), steps: Promise.resolve(), started: Date.now(), connectedAt: 0, timer: 0, gone: false, receiveVideo: false, pathChecked: 0, onmedia, onstate };
}

function fresh(call, stream, ice) {
  const c = leg(call, stream, ice, () => {
    const remote = /** @type {HTMLVideoElement} */ (document.getElementById("call-remote"));
    if (remote && remote.srcObject !== c.remote) remote.srcObject = c.remote;
  }, () => {
    const pc = c.pc;
    if (pc.connectionState === "connected" && !c.connectedAt) {
      c.connectedAt = Date.now();
      relayedPath(pc).then((yes) => { c.relayed = yes; render(c.call); });
    }
    if (pc.connectionState === "failed") say(t("callFailedPath"));
    render(c.call);
  });
  return c;
}

/** Sends to the node one after the other (a candidate never before the description). */
function send(c, path, json) {
  if (c.gone) return;
  c.chain = c.chain.then(() => api(`/calls/${enc(c.id)}/${path}`, { method: "POST", json: { tab: TAB, ...json } })).catch((e) => {
    // One candidate the node cannot use (a browser's private name) is not the call's end.
    if (path === "candidate") console.debug("spheres: a candidate not sent", e);
    else fail(e);
  });
}

function peer(c) {
  // Relay only when asked, and when there is a relay to go through.
  const relay = relayOnly() && hasRelay(c.ice);
  const pc = new RTCPeerConnection({ iceServers: c.ice, iceTransportPolicy: relay ? "relay" : "all" });
  for (const track of c.stream.getTracks()) pc.addTrack(track, c.stream);
  // Someone in a sphere's call without a camera still sees the others.
  if (c.receiveVideo && !c.stream.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
  pc.onicecandidate = (ev) => {
    if (ev.candidate && ev.candidate.candidate) send(c, "candidate", { mid: ev.candidate.sdpMid || "0", candidate: ev.candidate.candidate });
  };
  // The other side's tracks, in one stream for the video element (whether or not their
  // description grouped them).
  c.remote = new MediaStream();
  pc.ontrack = (ev) => {
    c.remote.addTrack(ev.track);
    c.onmedia();
  };
  pc.onconnectionstatechange = () => c.onstate();
  c.pc = pc;
  return pc;
}

/** Looks again, every few seconds, at whether `c`'s path goes through a relay: the browser
 *  may move to a direct path once it finds one (holes punched through both routers), or back
 *  to the relay. `then` when it changed. */
export function watchPath(c, then) {
  if (!c.pc || c.pc.connectionState !== "connected" || Date.now() - (c.pathChecked || 0) < 3000) return;
  c.pathChecked = Date.now();
  relayedPath(c.pc).then((yes) => { if (yes !== c.relayed) { c.relayed = yes; then(); } });
}

/** Whether the path the call took goes through a relay (TURN): said in the call's status. */
export async function relayedPath(pc) {
  try {
    const stats = await pc.getStats();
    /** @type {any} */
    let pair = null;
    // (Report kinds are read into `kind`: `type` names the node's events in these modules.)
    stats.forEach((r) => { const kind = r.type; if (kind === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
    if (!pair) stats.forEach((r) => { const kind = r.type; if (kind === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r; });
    if (!pair) return false;
    return [pair.localCandidateId, pair.remoteCandidateId].some((id) => stats.get(id)?.candidateType === "relay");
  } catch { return false; }
}

/** Moves this page's call on with what the node says of it, one step at a time. */
function advance(call) {
  const c = current;
  if (!c || c.id !== call.id) return Promise.resolve();
  c.steps = c.steps.then(() => {
    if (current !== c) return;
    if (call.state === "ended") { c.call = call; finish(call); return; }
    return step(c, call);
  }).catch((e) => fail(e));
  return c.steps;
}

/** Moves a connection on with what the node says of it: our offer when we open it, our
 *  answer to theirs, their answer, their candidates. */
export async function step(c, call) {
  if (c.gone) return;
  c.call = call;
  if (call.state === "connecting" && call.outgoing && !c.pc) {
    const pc = peer(c);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send(c, "describe", { type: "offer", sdp: pc.localDescription.sdp });
  }
  if (call.remote && !c.remoteSet) {
    c.remoteSet = true;
    // The other side's offer when we were called, its answer when we called.
    if (!call.outgoing) {
      const pc = c.pc || peer(c);
      await pc.setRemoteDescription({ type: "offer", sdp: call.remote.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      send(c, "describe", { type: "answer", sdp: pc.localDescription.sdp });
    } else if (c.pc) {
      await c.pc.setRemoteDescription({ type: "answer", sdp: call.remote.sdp });
    }
  }
  if (c.remoteSet && c.pc) {
    for (; c.applied < call.candidates.length; c.applied++) {
      const { mid, candidate } = call.candidates[c.applied];
      await c.pc.addIceCandidate({ candidate, sdpMid: mid }).catch((e) => console.debug("spheres: a candidate not taken", e));
    }
  }
}

function finish(call) {
  const c = current;
  if (c && c.id === call.id) {
    c.gone = true;
    c.pc?.close();
    c.stream.getTracks().forEach((tr) => tr.stop());
    clearInterval(c.timer);
    current = null;
  }
  render(call);
  setTimeout(() => { if (!current && panel?.dataset.call === call.id) close(); }, 4000);
}

function close() {
  panel?.remove();
  panel = null;
  stopRinging();
}

function ring() {
  if (ringer) return;
  document.title = "📞 " + t("callRingingTitle");
  try {
    const ctx = new AudioContext();
    const beep = () => {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = 440; g.gain.value = 0.1;
      o.connect(g).connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + 0.8);
    };
    beep();
    ringer = { ctx, id: setInterval(beep, 2500) };
  } catch { ringer = { ctx: null, id: 0 }; }
}

function stopRinging() {
  if (!ringer) return;
  clearInterval(ringer.id);
  ringer.ctx?.close();
  ringer = null;
  document.title = "spheres";
}

function who(call) { return call.with.split("@")[0]; }

function endText(call) {
  const v = { who: who(call) };
  const text = {
    they_hung_up: () => t("callEnd_they_hung_up", v),
    cancelled: () => t("callEnd_cancelled", v),
    declined: () => t("callEnd_declined", v),
    declined_here: () => t("callEnd_declined_here", v),
    missed: () => t("callEnd_missed", v),
    no_answer: () => t("callEnd_no_answer", v),
    elsewhere: () => t("callEnd_elsewhere", v),
    busy: () => t("callEnd_busy", v),
    failed: () => t("callEnd_failed", v),
  }[call.end] || (() => t("callEnd_hung_up", v));
  return text() + (call.why ? ` (${call.why})` : "");
}

/** A call's length as m:ss (the CLI writes the same). */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function button(label, onclick, cls = "") {
  return h("button", { type: "button", class: cls, onclick }, label);
}

/** Draws the panel for `call` (this page's, or one that rings here). */
function render(call) {
  if (!panel) {
    panel = h("section", { id: "call", class: "call", role: "dialog", "aria-labelledby": "call-title" });
    document.body.append(panel);
  }
  panel.dataset.call = call.id;
  const c = current && current.id === call.id ? current : null;
  const title = h("h2", { id: "call-title" });
  const status = h("p", { id: "call-status", class: "meta", role: "status" });
  const actions = h("div", { class: "call-actions" });
  if (call.state === "ringing" && !call.tab) {
    ring();
    title.textContent = call.video ? t("callIncomingVideo", { who: call.with }) : t("callIncoming", { who: call.with });
    actions.append(
      button(t("callAccept"), () => answer(call, call.video), "primary"),
      call.video ? button(t("callAcceptAudio"), () => answer(call, false)) : null,
      button(t("callDecline"), () => hangUp(call), "danger"));
  } else {
    stopRinging();
    title.textContent = call.video ? t("callVideoWith", { who: call.with }) : t("callWith", { who: call.with });
    if (call.state === "ended") {
      status.textContent = endText(call);
      actions.append(button(t("close"), close));
    } else {
      const pcState = c?.pc?.connectionState;
      status.textContent = call.state === "calling" ? t("callCalling", { who: who(call) })
        : pcState === "connected" && c.relayed ? t("callConnectedRelayed", { time: duration(Date.now() - c.connectedAt) })
        : pcState === "connected" ? t("callConnected", { time: duration(Date.now() - c.connectedAt) })
        : pcState === "failed" ? t("callFailedPath")
        : t("callConnecting");
      if (c && pcState === "connected" && !c.timer) c.timer = setInterval(() => { if (current === c) { render(c.call); watchPath(c, () => render(c.call)); } }, 1000);
      if (c) actions.append(...controls(c));
      actions.append(button(t("callHangUp"), () => hangUp(call), "danger"));
    }
  }
  // The videos stay across redraws (their streams play on).
  const remote = /** @type {HTMLVideoElement} */ (document.getElementById("call-remote")) ||
    h("video", { id: "call-remote", autoplay: true, playsinline: true, "aria-label": t("callTheirVideo") });
  const local = /** @type {HTMLVideoElement} */ (document.getElementById("call-local")) ||
    h("video", { id: "call-local", autoplay: true, playsinline: true, muted: true, "aria-label": t("callYourVideo") });
  if (c && local.srcObject !== c.stream) { local.muted = true; local.srcObject = c.stream; }
  if (c?.remote && remote.srcObject !== c.remote) remote.srcObject = c.remote;
  const live = !!c && call.state !== "ended";
  remote.hidden = !live;
  local.hidden = !live || !c.stream.getVideoTracks().length;
  panel.replaceChildren(title, h("div", { class: "call-media" }, remote, local), status, actions);
}

function controls(c) {
  const audio = c.stream.getAudioTracks()[0];
  const video = c.stream.getVideoTracks()[0];
  const out = [];
  if (audio) out.push(button(audio.enabled ? t("callMute") : t("callUnmute"), () => { audio.enabled = !audio.enabled; render(c.call); }));
  if (video) out.push(button(video.enabled ? t("callCameraOff") : t("callCameraOn"), () => { video.enabled = !video.enabled; render(c.call); }));
  out.push(button(t("callDevices"), () => chooseDevices(c)));
  return out;
}

/** Another microphone or camera, switched without a pause in the call. */
async function chooseDevices(c) {
  const all = await navigator.mediaDevices.enumerateDevices();
  const pick = (kind, label) => {
    const options = all.filter((d) => d.kind === kind);
    if (!options.length) return null;
    const current = (kind === "audioinput" ? c.stream.getAudioTracks() : c.stream.getVideoTracks())[0]?.getSettings().deviceId;
    const sel = h("select", { id: "call-" + kind }, options.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${label} ${i + 1}`)));
    sel.addEventListener("change", () => switchDevice(c, kind === "audioinput" ? "audio" : "video", sel.value));
    return h("label", {}, label, " ", sel);
  };
  const form = h("div", { class: "call-devices" },
    pick("audioinput", t("callMicrophone")),
    c.stream.getVideoTracks().length ? pick("videoinput", t("callCamera")) : null);
  panel?.querySelector(".call-devices")?.remove();
  panel?.append(form);
}

async function switchDevice(c, kind, deviceId) {
  try {
    const fresh = await media(kind === "video", kind === "video" ? { video: deviceId } : { audio: deviceId });
    const track = kind === "video" ? fresh.getVideoTracks()[0] : fresh.getAudioTracks()[0];
    const old = kind === "video" ? c.stream.getVideoTracks()[0] : c.stream.getAudioTracks()[0];
    for (const tr of fresh.getTracks()) if (tr !== track) tr.stop();
    const sender = c.pc?.getSenders().find((s) => s.track === old);
    await sender?.replaceTrack(track);
    if (old) { c.stream.removeTrack(old); old.stop(); }
    c.stream.addTrack(track);
    render(c.call);
  } catch (e) { fail(e); }
}

async function answer(call, video) {
  stopRinging();
  if (!canCall()) { say(whyNoCall()); return; }
  let stream;
  try { stream = await media(video); } catch (e) { fail(e); return; }
  try {
    const ice = await relays();
    const answered = await api(`/calls/${enc(call.id)}/answer`, { method: "POST", json: { tab: TAB } });
    current = fresh(answered, stream, ice);
    render(answered);
    await advance(answered);
  } catch (e) {
    stream.getTracks().forEach((tr) => tr.stop());
    fail(e);
    close();
  }
}

async function hangUp(call) {
  dismissed.add(call.id);
  try {
    const ended = await api(`/calls/${enc(call.id)}/hangup`, { method: "POST" });
    if (current?.id === call.id) finish(ended);
    else close();
  } catch (e) { fail(e); close(); }
}

let looking = false, again = false;
/** Looks at the node's calls: this page's goes on, one that rings here shows. */
async function look() {
  if (looking) { again = true; return; }
  looking = true;
  try {
    /** @type {CallInfo[]} */
    const calls = (await api("/calls")).filter((c) => !c.sphere);
    const mine = current && calls.find((c) => c.id === current.id);
    if (current && !mine) finish({ ...current.call, state: "ended", end: "failed" });
    if (mine) await advance(mine);
    else if (!current) {
      const ringing = calls.find((c) => c.state === "ringing" && !dismissed.has(c.id));
      if (ringing) render(ringing);
      else if (panel) {
        // Ringing stopped here (answered elsewhere, called off): say how it ended.
        const shown = calls.find((c) => c.id === panel.dataset.call);
        if (shown && shown.state === "ended" && !dismissed.has(shown.id)) { dismissed.add(shown.id); render(shown); setTimeout(close, 4000); }
        else if (!shown || shown.state !== "ended") close();
      }
    }
  } catch (e) {
    console.debug("spheres: calls not read", e);
  } finally {
    looking = false;
    if (again) { again = false; look(); }
  }
}

/** Starts listening for calls (once, when the page loads). */
export function watchCalls() {
  on(["call", "resync"], () => { look(); });
  look();
  // A page that goes away hangs up the call it handles (the other side would wait a minute).
  window.addEventListener("pagehide", () => {
    if (current) fetch(`/api/calls/${enc(current.id)}/hangup`, { method: "POST", keepalive: true, headers: { "X-Spheres": "1" } }).catch(() => {});
  });
}
