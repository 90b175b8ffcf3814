// A link's page, when its maker let viewers share with each other: this module joins the
// link's swarm (swarm.js), puts a service worker (sw.js) between the page's players and the
// node, so videos, sounds and downloads come from other viewers when they have them, and
// says plainly that other viewers can see this browser's address, with a way out. Without
// it (no script, no service worker, an address that is not a secure context, or the viewer
// chose so) the page plays from the node as before.
//
// The page gives its words (English or French, as the node chose) in data attributes of
// #p2p, so this module needs no strings of its own.

import { Swarm } from "./swarm.js";

const OFF = "spheres-link-direct";
const box = document.getElementById("p2p");
const base = box?.dataset.base;

/** Sizes as the page writes them (binary units, as the node does). */
function human(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(2)} ${units[u]}`;
}

const TYPES = {
  mp4: "video/mp4", m4v: "video/mp4", webm: "video/webm", mkv: "video/x-matroska", mov: "video/quicktime",
  ogv: "video/ogg", mp3: "audio/mpeg", m4a: "audio/mp4", aac: "audio/aac", ogg: "audio/ogg", oga: "audio/ogg",
  opus: "audio/ogg", flac: "audio/flac", wav: "audio/wav", jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png",
  gif: "image/gif", webp: "image/webp", avif: "image/avif",
};

function typeOf(path) {
  const ext = path.split(".").pop()?.toLowerCase() || "";
  return TYPES[ext] || "application/octet-stream";
}

/** The page's players loaded again, their metadata first: through the service worker once it
 *  answers them, or from the node when this page does not share (opted out, or its swarm
 *  could not start). */
function replay() {
  for (const el of document.querySelectorAll("video[data-src], audio[data-src]")) {
    const media = /** @type {HTMLMediaElement} */ (el);
    media.src = media.dataset.src || "";
    media.preload = "metadata";
  }
}

/** Answers the service worker's asks for the bytes of a file of this link. */
function serve(swarm, token, e) {
  const ask = e.data;
  const port = e.ports[0];
  if (!ask || ask.type !== "spheres-range" || ask.token !== token || !port) return;
  const file = swarm.torrent.files[ask.index];
  if (!file || file.pad || !Number.isSafeInteger(ask.start) || ask.start >= file.length) {
    port.postMessage({ ok: false });
    return;
  }
  const end = ask.end === null ? file.length : Math.min(file.length, ask.end);
  if (end <= ask.start) { port.postMessage({ ok: false }); return; }
  const reader = swarm.read(ask.index, ask.start, end);
  port.onmessage = async (m) => {
    if (m.data === "cancel") { reader.return(undefined); port.close(); return; }
    try {
      const next = await reader.next();
      if (next.done) port.postMessage({ done: true });
      else port.postMessage({ chunk: next.value.buffer }, [next.value.buffer]);
    } catch (err) {
      port.postMessage({ error: String(err?.message || err) });
    }
  };
  port.postMessage({ ok: true, size: file.length, start: ask.start, end, type: typeOf(file.path) });
}

function show(swarm) {
  const line = box.querySelector(".p2p-stats");
  const template = box.dataset.stats || "";
  swarm.onChange((s) => {
    if (!line) return;
    line.textContent = template
      .replace("{peers}", String(s.peers))
      .replace("{from_peers}", human(s.fromPeers))
      .replace("{from_node}", human(s.fromNode))
      .replace("{to_peers}", human(s.toPeers));
  });
  swarm.changed();
}

async function start() {
  if (!box || !base) return;
  const token = base.split("/").pop() || "";
  const toggle = /** @type {HTMLButtonElement | null} */ (box.querySelector("button"));
  const off = localStorage.getItem(OFF) === "1";
  const can = window.isSecureContext && "serviceWorker" in navigator && "RTCPeerConnection" in window;
  if (!can || off) {
    box.querySelector(".p2p-text").textContent = box.dataset.direct || "";
    if (toggle && can) {
      toggle.textContent = box.dataset.on || "";
      toggle.hidden = false;
      toggle.onclick = () => { localStorage.removeItem(OFF); location.reload(); };
    }
    replay();
    return;
  }
  box.querySelector(".p2p-text").textContent = box.dataset.shared || "";
  if (toggle) {
    toggle.textContent = box.dataset.off || "";
    toggle.hidden = false;
    toggle.onclick = () => { localStorage.setItem(OFF, "1"); location.reload(); };
  }
  let swarm;
  try {
    swarm = await Swarm.open(base);
    navigator.serviceWorker.addEventListener("message", (e) => serve(swarm, token, e));
    navigator.serviceWorker.startMessages();
    await navigator.serviceWorker.register("/l/sw.js", { scope: "/l/" });
    if (!navigator.serviceWorker.controller) {
      await new Promise((ok) => navigator.serviceWorker.addEventListener("controllerchange", ok, { once: true }));
    }
  } catch (err) {
    console.warn("watching with other viewers is not possible here", err);
    box.querySelector(".p2p-text").textContent = box.dataset.direct || "";
    if (toggle) toggle.hidden = true;
    replay();
    return;
  }
  // The worker answers this page's players from its swarm once told so, again and again
  // (the browser may stop the worker between two plays, and it forgets).
  const serving = () => new Promise((ok) => {
    const worker = navigator.serviceWorker.controller;
    if (!worker) { ok(undefined); return; }
    const { port1, port2 } = new MessageChannel();
    const timer = setTimeout(ok, 1000);
    port1.onmessage = () => { clearTimeout(timer); port1.close(); ok(undefined); };
    worker.postMessage({ type: "spheres-serve", token }, [port2]);
  });
  await serving();
  const every = setInterval(() => (swarm.closed ? clearInterval(every) : serving()), 10_000);
  show(swarm);
  replay();
  addEventListener("pagehide", () => swarm.close());
  // Back from the browser's page cache, the swarm is gone: a fresh page.
  addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });
  // For tests and the curious: what this page got and gave.
  /** @type {any} */ (window).spheresLink = {
    status: () => swarm.status(),
    files: () => swarm.torrent.files.map((f, index) => ({ index, path: f.path, length: f.length, pad: f.pad })),
    /** Reads file `index` whole through the page's player path; its SHA-256 (hex). */
    async digest(index) {
      const r = await fetch(`${base}/files/${index}`);
      const bytes = await r.arrayBuffer();
      const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
    },
  };
}

start();
