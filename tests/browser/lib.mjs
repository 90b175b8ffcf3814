// What the browser tests share: the node's API as the CLI calls it (with the token from the
// node's data folder), a browser login with a one-time link, Chromium launched offline, pages
// that record what the security policy blocked, and axe.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);

/** The node's API as the CLI calls it: `dataOf[node]` is the node's data folder, where
 *  node.json holds its token (new at each start). */
export function nodeApiFor(dataOf) {
  const tokenOf = (node) => JSON.parse(fs.readFileSync(path.join(dataOf[node], "node.json"), "utf8")).token;
  return (node, p, opts = {}) =>
    fetch(node + p, { ...opts, headers: { ...(opts.headers || {}), authorization: `Bearer ${tokenOf(node)}` } });
}

/** A browser opens a node on its own computer with a one-time link from `spheres open`. */
export async function login(nodeApi, page, node) {
  const { url } = await (await nodeApi(node, "/api/open", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json();
  await page.goto(url);
}

/** The same, for a node this script cannot reach (behind a router, in a network namespace):
 *  the page, which can, asks for the one-time link with the node's token. */
export async function loginFromPage(dataOf, page, node) {
  const token = JSON.parse(fs.readFileSync(path.join(dataOf[node], "node.json"), "utf8")).token;
  await page.goto(node + "/");
  const url = await page.evaluate(async (token) => {
    const r = await fetch("/api/open", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: "{}" });
    return (await r.json()).url;
  }, token);
  await page.goto(url);
}

/** Debian's Chromium: offline, as root, headless, with `extra` arguments (`executablePath`: a
 *  wrapper that starts it, e.g. inside a network namespace). */
export function launch(extra = [], executablePath = "/usr/bin/chromium") {
  return chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", ...extra],
  });
}

/** New pages (English) of `browser`; what any page's policy blocked goes into `blocked`:
 *  anything there is a bug of ours. */
export function pages(browser) {
  const blocked = [];
  async function newPage() {
    const page = await (await browser.newContext({ locale: "en-US" })).newPage();
    page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) blocked.push(m.text()); });
    return page;
  }
  return { blocked, newPage };
}

// The node's pages forbid inline script (Content-Security-Policy): axe comes in through the
// browser's debugging protocol, which the policy does not govern, as a test tool should.
const axeSource = fs.readFileSync(require.resolve("axe-core"), "utf8");

/** No serious or critical accessibility issue on `page` (axe). */
export async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`), [], `accessibility on ${name}`);
}

/** A page of its own origin (not the node's) that loads WebTorrent, the real client, from
 *  its npm browser build: `window.client`, no STUN server (no traffic off this machine), data
 *  channels over loopback; `window.failed` holds its last error. Resolves with the server
 *  and its address. */
export async function webtorrentSite() {
  const bundle = fs.readFileSync(path.join(import.meta.dirname, "node_modules/.webtorrent/webtorrent.min.js"));
  const site = http.createServer((req, res) => {
    if (req.url === "/webtorrent.min.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(bundle);
      return;
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>webtorrent</title><script type="module">
      import WebTorrent from "/webtorrent.min.js";
      window.client = new WebTorrent({ dht: false, lsd: false, utp: false, tracker: { rtcConfig: { iceServers: [] } } });
      window.client.on("error", (e) => { window.failed = String(e.message || e); });
      window.ready = true;
    </script>`);
  });
  await new Promise((ok) => site.listen(0, "127.0.0.1", ok));
  return { site, origin: `http://127.0.0.1:${site.address().port}/` };
}

/** What arrives from the other side, measured in the page: video frames decoded and shown
 *  (requestVideoFrameCallback on the remote video `id`, over `ms`) and the loudest audio level
 *  (an analyser on the remote stream). */
export async function received(p, ms = 1500, id = "call-remote") {
  return p.evaluate(async ([ms, id]) => {
    const video = /** @type {HTMLVideoElement} */ (document.getElementById(id));
    const stream = /** @type {MediaStream} */ (video.srcObject);
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    let frames = 0, loudest = 0;
    const count = () => { frames++; video.requestVideoFrameCallback(count); };
    video.requestVideoFrameCallback(count);
    const end = performance.now() + ms;
    while (performance.now() < end) {
      analyser.getFloatTimeDomainData(samples);
      for (const s of samples) loudest = Math.max(loudest, Math.abs(s));
      await new Promise((r) => setTimeout(r, 50));
    }
    await ctx.close();
    return { frames, width: video.videoWidth, loudest, audioTracks: stream.getAudioTracks().length };
  }, [ms, id]);
}

/** Chromium with a fake camera and microphone (calls), inside network namespace `netns` if
 *  given, treating the plain-HTTP origins `secure` as secure (cameras need one). */
export async function mediaBrowser({ netns = "", secure = [] } = {}) {
  let exe = "/usr/bin/chromium";
  if (netns) {
    assert.match(netns, /^[a-z0-9-]+$/, "a namespace's name");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spheres-chromium-"));
    exe = path.join(dir, "chromium");
    fs.writeFileSync(exe, `#!/bin/sh\nexec ip netns exec ${netns} /usr/bin/chromium "$@"\n`, { mode: 0o700 });
    process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return launch(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    ...(secure.length ? [`--unsafely-treat-insecure-origin-as-secure=${secure.join(",")}`] : [])], exe);
}

/** Chromium for the call tests: a fake camera and microphone, pages that wait at most `wait`
 *  ms for anything, screenshots in SHOTS, the stages printed as the Rust side waits for them,
 *  and the whole script ended (exit 2) past `limit` ms. `netns`: run it inside that network
 *  namespace; `secure`: plain-HTTP origins it treats as secure (cameras need one). */
export async function callBrowser(wait, limit, { netns = "", secure = [] } = {}) {
  const shots = process.env.SHOTS;
  fs.mkdirSync(shots, { recursive: true });
  const browser = await mediaBrowser({ netns, secure });
  const timer = setTimeout(() => { console.error(`${process.argv[1]} took too long`); process.exit(2); }, limit);
  const { blocked, newPage: page } = pages(browser);
  return {
    browser, blocked, timer,
    async newPage(viewport) {
      const p = await page();
      p.setDefaultTimeout(wait);
      if (viewport) await p.setViewportSize(viewport);
      return p;
    },
    shot: (p, name) => p.screenshot({ path: path.join(shots, `${name}.png`) }),
    step: (name) => console.log(JSON.stringify({ event: name })),
  };
}
