// bench/stream.sh's browser part: one member's page in Debian's Chromium; the click on a
// video its node has not fetched, then a seek to 80 %. Prints one JSON line:
// {first_frame_ms, seek_ms, have_bytes_at_first, have_bytes_at_seek, total_bytes}.
// Env: NODE (the node's web address), DATA (its data folder, for its API token), SPHERE,
// NAME (the video's file name).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const { NODE, DATA, SPHERE, NAME } = process.env;
const token = JSON.parse(fs.readFileSync(path.join(DATA, "node.json"), "utf8")).token;
const api = (p, opts = {}) => fetch(NODE + p, { ...opts, headers: { ...(opts.headers || {}), authorization: `Bearer ${token}` } });
const share = async () => (await (await api(`/api/spheres/${encodeURIComponent(SPHERE)}/shares`)).json()).find((s) => s.name === NAME);
const WAIT = 180_000;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await (await browser.newContext({ locale: "en-US" })).newPage();
  // BENCH_DEBUG=1: the page's requests for the video, with their times, on stderr.
  if (process.env.BENCH_DEBUG) {
    const t0 = Date.now();
    page.on("request", (r) => { if (r.url().includes("/files/")) console.error(`${Date.now() - t0} ms request ${r.headers().range || ""}`); });
    page.on("requestfinished", (r) => { if (r.url().includes("/files/")) console.error(`${Date.now() - t0} ms finished ${r.headers().range || ""}`); });
    page.on("requestfailed", (r) => { if (r.url().includes("/files/")) console.error(`${Date.now() - t0} ms failed ${r.headers().range || ""}`); });
  }
  const { url } = await (await api("/api/open", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json();
  await page.goto(url);
  await page.goto(`${NODE}/#/s/${encodeURIComponent(SPHERE)}`);
  await page.waitForFunction((n) => [...document.querySelectorAll(".card .open")].some((e) => e.textContent.includes(n) && !e.disabled), NAME, { timeout: WAIT });
  // The click, and the page's clock, in the same task.
  await page.evaluate((n) => {
    const open = [...document.querySelectorAll(".card .open")].find((e) => e.textContent.includes(n));
    window.benchStart = performance.now();
    open.click();
  }, NAME);
  await page.waitForFunction(() => { const v = document.querySelector("#player"); return v && v.currentTime > 0 && !v.paused; }, null, { polling: "raf", timeout: WAIT });
  const first = await page.evaluate(() => performance.now() - window.benchStart);
  const atFirst = await share();
  const seek = await page.evaluate((wait) => new Promise((ok, fail) => {
    const v = document.querySelector("#player");
    const target = v.duration * 0.8;
    const start = performance.now();
    v.currentTime = target;
    const look = () => {
      if (!v.seeking && v.readyState >= 3 && !v.paused && v.currentTime > target + 0.04) ok(performance.now() - start);
      else if (performance.now() - start > wait) fail(new Error(`no playing at ${target} s: readyState ${v.readyState}, at ${v.currentTime}`));
      else requestAnimationFrame(look);
    };
    requestAnimationFrame(look);
  }), WAIT);
  const atSeek = await share();
  console.log(JSON.stringify({
    first_frame_ms: Math.round(first), seek_ms: Math.round(seek),
    have_bytes_at_first: atFirst.have_bytes, have_bytes_at_seek: atSeek.have_bytes, total_bytes: atSeek.total_bytes,
  }));
} finally {
  await browser.close();
}
