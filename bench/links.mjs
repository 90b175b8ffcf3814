// Driven by bench/links.sh (its header gives the method). Env: DIRECT and P2P (the two
// links' pages), RUNS, VIEWERS, RATE (bytes/s of HTTP from the node each page may take, 0:
// no cap). Prints one JSON line per measure, then a summary line.
import { launch } from "../tests/browser/lib.mjs";

const { DIRECT, P2P } = process.env;
const RUNS = Number(process.env.RUNS || 3);
const VIEWERS = Number(process.env.VIEWERS || 5);
const RATE = Number(process.env.RATE || 0);
const WAIT = 600_000;
const out = (o) => console.log(JSON.stringify(o));

const browser = await launch(["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"]);

/** A page in a profile of its own, its HTTP capped at RATE as the node's upload would. */
async function open(url) {
  const context = await browser.newContext({ locale: "en-US" });
  const page = await context.newPage();
  if (RATE > 0) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: RATE, uploadThroughput: -1 });
  }
  await page.goto(url);
  return page;
}

/** From the click on play to the first frame, and from a seek to 80 % to playing there (ms,
 *  the page's own clock). */
async function playAndSeek(page, p2p) {
  if (p2p) await page.waitForFunction(() => window.spheresLink, null, { timeout: WAIT });
  return page.evaluate(async () => {
    const video = document.querySelector("video");
    video.muted = true;
    const until = (ok) => new Promise((done) => { const t = () => (ok() ? done() : requestAnimationFrame(t)); t(); });
    const t0 = performance.now();
    video.play();
    await until(() => video.currentTime > 0 && !video.paused);
    const first = performance.now() - t0;
    await until(() => video.duration > 0 && Number.isFinite(video.duration));
    const t1 = performance.now();
    const target = video.duration * 0.8;
    video.currentTime = target;
    await until(() => !video.seeking && video.readyState >= 3 && video.currentTime > target);
    return { first, seek: performance.now() - t1 };
  });
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

try {
  // 1. Time to the first frame and after a seek: a link served by the node only, and one
  //    shared between viewers (its page alone: nobody to share with yet), each run in a
  //    fresh profile.
  const times = { direct: [], p2p: [] };
  for (let r = 1; r <= RUNS; r++) {
    for (const [kind, url] of [["direct", DIRECT], ["p2p", P2P]]) {
      const page = await open(url);
      const t = await playAndSeek(page, kind === "p2p");
      out({ measure: "play", kind, run: r, ...t });
      times[kind].push(t);
      await page.context().close();
    }
  }

  // 2. VIEWERS viewers of the shared link, one after the other, each reading the video whole
  //    through its page (as its player and a download do), the earlier ones staying: where
  //    each one's bytes came from.
  const viewers = [];
  let fromPeers = 0, fromNode = 0;
  for (let v = 1; v <= VIEWERS; v++) {
    const page = await open(P2P);
    await page.waitForFunction(() => window.spheresLink, null, { timeout: WAIT });
    if (v > 1) await page.waitForFunction((n) => window.spheresLink.status().peers >= n, Math.min(v - 1, 3), { timeout: WAIT });
    const t0 = Date.now();
    const index = await page.evaluate(() => window.spheresLink.files().find((f) => !f.pad).index);
    await page.evaluate((i) => window.spheresLink.digest(i), index);
    const s = await page.evaluate(() => window.spheresLink.status());
    out({ measure: "viewer", viewer: v, seconds: (Date.now() - t0) / 1000, fromPeers: s.fromPeers, fromNode: s.fromNode, peers: s.peers });
    fromPeers += s.fromPeers;
    fromNode += s.fromNode;
    viewers.push(page);
  }
  out({
    summary: true,
    direct_first_ms: median(times.direct.map((t) => t.first)),
    direct_seek_ms: median(times.direct.map((t) => t.seek)),
    p2p_first_ms: median(times.p2p.map((t) => t.first)),
    p2p_seek_ms: median(times.p2p.map((t) => t.seek)),
    viewers: VIEWERS,
    share_from_viewers: fromPeers / (fromPeers + fromNode),
  });
} finally {
  await browser.close();
}
