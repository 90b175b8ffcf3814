// A link's viewers share with each other (our page's own modules, ui/link/), in Debian's
// Chromium, each in a browser profile of its own:
// 1. the first viewer opens the link and reads the share's big file through its page (the
//    path its player and its download take): every byte from the node;
// 2. the second and third open it once another viewer is connected to them, and get most of
//    theirs from the viewers before them (counted by each page);
// 3. the third plays the video through its service worker;
// 4. WebTorrent (the real client, on a page of another origin, with the link's web seed
//    blocked) gets the file from our viewers only;
// 5. our page, with the node's files blocked to it and our other viewers gone, gets the file
//    from WebTorrent only.
// LINK: the link's page; TORRENT: its torrent. Prints events as JSON lines.
import assert from "node:assert/strict";
import { launch, pages, webtorrentSite } from "./lib.mjs";

const { LINK, TORRENT } = process.env;
const WAIT = 60_000;
const step = (name, extra = {}) => console.log(JSON.stringify({ event: name, ...extra }));

const browser = await launch(["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--autoplay-policy=no-user-gesture-required",
  // Every page here plays its part at once, in the foreground or not.
  "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"]);
const { blocked, newPage } = pages(browser);

function watch(page, name) {
  page.on("console", (m) => { if (!/Failed to load resource/.test(m.text())) console.error(`[${name}] ${m.text()}`); });
  page.on("pageerror", (e) => console.error(`[${name} error] ${e}`));
}

/** A viewer of our page, its swarm running. */
async function viewer(name, { blockNode = false } = {}) {
  const page = await newPage();
  watch(page, name);
  // The page's own requests to the node for pieces carry `?from=page`.
  if (blockNode) await page.route(/\/files\/\d+\?from=page$/, (r) => r.abort());
  await page.goto(LINK);
  await page.waitForFunction(() => window.spheresLink, null, { timeout: WAIT });
  return page;
}

const status = (page) => page.evaluate(() => window.spheresLink.status());
const fileOf = (page, suffix) => page.evaluate((s) => window.spheresLink.files().find((f) => f.path.endsWith(s)), suffix);
/** Every file of the share read through the page, as its player and downloads read them:
 *  each one's SHA-256 by path. */
const digests = (page) => page.evaluate(async () => {
  const out = {};
  for (const f of window.spheresLink.files()) if (!f.pad) out[f.path] = await window.spheresLink.digest(f.index);
  return out;
});
const connected = (page, n) => page.waitForFunction((n) => window.spheresLink.status().peers >= n, n, { timeout: WAIT });

const { site, origin } = await webtorrentSite();

const viewers = [];
try {
  // 1. The first viewer: everything from the node.
  const one = await viewer("one");
  viewers.push(one);
  const big = await fileOf(one, "data.bin");
  const clip = await fileOf(one, "clip.webm");
  step("one", { digests: await digests(one), status: await status(one), size: big.length });

  // 2. The second and third: from the viewers before them.
  const two = await viewer("two");
  viewers.push(two);
  await connected(two, 1);
  step("two", { digests: await digests(two), status: await status(two) });
  const three = await viewer("three");
  viewers.push(three);
  await connected(three, 2);
  step("three", { digests: await digests(three), status: await status(three) });

  // 3. The video plays on the third, through its service worker.
  const played = await three.evaluate(async (src) => {
    const video = document.querySelector(`video[data-src$="/files/${src}"]`);
    video.muted = true;
    await video.play();
    await new Promise((ok) => { const t = () => (video.currentTime > 0.5 ? ok() : requestAnimationFrame(t)); t(); });
    return { time: video.currentTime, width: video.videoWidth, controlled: !!navigator.serviceWorker.controller };
  }, clip.index);
  step("played", played);

  // 4. WebTorrent gets the file from our viewers (its web seed blocked).
  const wt = await newPage();
  watch(wt, "webtorrent");
  await wt.route(/\/seed(\/|$)/, (r) => r.abort());
  await wt.goto(origin);
  await wt.waitForFunction(() => window.ready, null, { timeout: WAIT });
  const got = await wt.evaluate(async ({ torrent, wait, name }) => {
    const t = await new Promise((ok, fail) => {
      const t = window.client.add(torrent, {}, ok);
      t.on("error", (e) => fail(new Error(String(e.message || e))));
      setTimeout(() => fail(new Error(`not done: ${t.progress}`)), wait);
    });
    if (!t.done) await new Promise((ok) => t.once("done", ok));
    const digests = {};
    for (const f of t.files) {
      if (f.padding || /\.pad\//.test(f.path)) continue;
      const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
      digests[f.path] = [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
    }
    const from = {};
    for (const w of t.wires) from[w.type] = (from[w.type] || 0) + w.downloaded;
    return { digests, from, received: t.received };
  }, { torrent: TORRENT, wait: WAIT });
  step("webtorrent_got", got);
  const given = (await Promise.all(viewers.map(status))).reduce((n, s) => n + s.toPeers, 0);
  step("given", { given });

  // 5. Our page gets it from WebTorrent alone: the others leave, the node's files are blocked.
  for (const v of viewers.splice(0)) await v.context().close();
  const four = await viewer("four", { blockNode: true });
  await connected(four, 1);
  step("four", { digests: await digests(four), status: await status(four) });
  assert.deepEqual(blocked, [], "the pages' policy blocked something");
  step("ok");
} finally {
  await browser.close();
  site.close();
}
