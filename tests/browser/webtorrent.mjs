// WebTorrent (the real client, its browser build from npm) against a link of our node, in
// Debian's Chromium: the first browser opens the link's torrent and gets the share from the
// node's web seed; the second has only a magnet with the link's tracker (no web seed), so
// every byte it gets comes from the first browser over WebRTC, which found it through our
// WebSocket tracker. Prints the SHA-256 of each file each browser holds, and where the
// second browser's bytes came from. TORRENT: the link's torrent URL; MAGNET: a magnet of it
// with only the link's tracker.
import assert from "node:assert/strict";
import { launch, pages, webtorrentSite } from "./lib.mjs";

const { TORRENT, MAGNET } = process.env;
const WAIT = 60_000;
const step = (name, extra = {}) => console.log(JSON.stringify({ event: name, ...extra }));

const { site, origin } = await webtorrentSite();

const browser = await launch(["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"]);
const { newPage } = pages(browser);

/** Adds `source` to the page's client; resolves with each file's SHA-256 (hex) once done,
 *  and where its bytes came from (by kind of wire). */
async function fetchAll(page, source) {
  page.on("console", (m) => { if (!/Failed to load resource/.test(m.text())) console.error(`[browser] ${m.text()}`); });
  page.on("response", (r) => { if (r.status() >= 400) console.error(`[browser] ${r.status()} ${r.request().method()} ${r.url()} ${JSON.stringify(r.request().headers())}`); });
  page.on("pageerror", (e) => console.error(`[browser error] ${e}`));
  await page.goto(origin);
  await page.waitForFunction(() => window.ready, null, { timeout: WAIT });
  return page.evaluate(async ({ source, wait }) => {
    const torrent = await new Promise((ok, fail) => {
      const t = window.client.add(source, {}, ok);
      t.on("error", (e) => fail(new Error(String(e.message || e))));
      t.on("warning", (e) => console.log(`warning: ${e.message || e}`));
      t.on("wire", (w) => console.log(`wire ${w.type} ${w.remoteAddress || ""}`));
      setTimeout(() => fail(new Error(`not done: ${window.failed || ""} ${t.progress}`)), wait);
    });
    console.log(`files ${torrent.files.length}: ${torrent.files.map((f) => f.path + "@" + f.offset + "+" + f.length).join(", ")} pieces ${torrent.pieces.length}x${torrent.pieceLength} urlList ${torrent.urlList}`);
    if (!torrent.done) await new Promise((ok) => torrent.once("done", ok));
    const files = {};
    for (const f of torrent.files) {
      const bytes = await f.arrayBuffer();
      const digest = await crypto.subtle.digest("SHA-256", bytes);
      files[f.path] = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    }
    const from = {};
    for (const w of torrent.wires) from[w.type] = (from[w.type] || 0) + w.downloaded;
    return { infoHash: torrent.infoHash, files, from, received: torrent.received };
  }, { source, wait: WAIT });
}

try {
  const first = await newPage();
  const one = await fetchAll(first, TORRENT);
  step("first_done", one);
  const second = await newPage();
  const two = await fetchAll(second, MAGNET);
  step("second_done", two);
  assert.deepEqual(two.files, one.files, "the two browsers hold different files");
  assert.ok((two.from.webrtc || 0) > 0, `the second browser got nothing over WebRTC: ${JSON.stringify(two.from)}`);
  step("ok");
} finally {
  await browser.close();
  site.close();
}
