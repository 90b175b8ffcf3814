// bench/calls.sh's browser side: see the method there. Prints one JSON line per call, then a
// summary line with the medians (ms) and their ratios to WebRTC alone.
import { execFileSync } from "node:child_process";
import { login, mediaBrowser, nodeApiFor } from "../tests/browser/lib.mjs";

const { NODE_A, NODE_B, NETNS_A, NETNS_B, NAT_SCRIPT, NAT_PREFIX } = process.env;
const RUNS = Number(process.env.RUNS || 5);
const nodeApi = nodeApiFor({ [NODE_A]: process.env.DATA_A, [NODE_B]: process.env.DATA_B });
// Across routers (NAT=1): each page in its own home's browser, the nodes on "the internet".
const secure = NETNS_A ? [NODE_A, NODE_B] : [];
const browsers = { [NODE_A]: await mediaBrowser({ netns: NETNS_A, secure }) };
browsers[NODE_B] = NETNS_B ? await mediaBrowser({ netns: NETNS_B, secure }) : browsers[NODE_A];
const median = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];

async function page(node) {
  const p = await (await browsers[node].newContext({ locale: "en-US" })).newPage();
  p.setDefaultTimeout(30_000);
  await login(nodeApi, p, node);
  return p;
}

const a = await page(NODE_A);
const b = await page(NODE_B);
await a.goto(NODE_A + "/#/chat/" + encodeURIComponent("m1@bench.test"));
await a.getByRole("button", { name: "Video call" }).waitFor();

/** m1's page answers whatever rings, at once. */
async function autoAnswer() {
  await b.goto(NODE_B + "/#/feed");
  await b.evaluate(() => {
    new MutationObserver(() => {
      const accept = [...document.querySelectorAll("#call button")].find((x) => x.textContent === "Accept");
      if (accept && !accept.dataset.taken) { accept.dataset.taken = "1"; accept.click(); }
    }).observe(document.body, { subtree: true, childList: true });
  });
}

/** One call: from the click to the first frame of m1's video on alice's page (ms); the page
 *  then says it went `how`. */
async function call(how) {
  const ms = await a.evaluate(() => new Promise((done, fail) => {
    const start = performance.now();
    const button = [...document.querySelectorAll("button")].find((x) => x.textContent.endsWith("Video call"));
    button.click();
    const give = setTimeout(() => fail(new Error("no frame in 30 s")), 30_000);
    const look = () => {
      const v = /** @type {HTMLVideoElement} */ (document.getElementById("call-remote"));
      if (v && v.srcObject && /** @type {MediaStream} */ (v.srcObject).getVideoTracks().length) {
        v.requestVideoFrameCallback(() => { clearTimeout(give); done(performance.now() - start); });
      } else requestAnimationFrame(look);
    };
    look();
  }));
  await a.locator("#call-status").getByText(how).waitFor();
  await a.locator("#call").getByRole("button", { name: "Hang up" }).click();
  await a.locator("#call-status").getByText("Call ended.").waitFor();
  await b.locator("#call-status").getByText(/hung up/).waitFor();
  return ms;
}

/** WebRTC alone: two connections in alice's page, signalled in JavaScript (ms). */
async function alone() {
  return a.evaluate(async () => {
    const start = performance.now();
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } });
    const one = new RTCPeerConnection(), two = new RTCPeerConnection();
    one.onicecandidate = (e) => e.candidate && two.addIceCandidate(e.candidate);
    two.onicecandidate = (e) => e.candidate && one.addIceCandidate(e.candidate);
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true;
    const frame = new Promise((ok) => { two.ontrack = (e) => { v.srcObject = e.streams[0]; v.requestVideoFrameCallback(ok); }; });
    for (const t of stream.getTracks()) one.addTrack(t, stream);
    await one.setLocalDescription(await one.createOffer());
    await two.setRemoteDescription(one.localDescription);
    await two.setLocalDescription(await two.createAnswer());
    await one.setRemoteDescription(two.localDescription);
    await frame;
    const ms = performance.now() - start;
    one.close(); two.close(); stream.getTracks().forEach((t) => t.stop());
    return ms;
  });
}

const result = { baseline: [], direct: [], relay: [] };
for (let i = 0; i < RUNS; i++) result.baseline.push(await alone());
await autoAnswer();
for (let i = 0; i < RUNS; i++) {
  const ms = await call(/^Connected · /);
  result.direct.push(ms);
  console.log(JSON.stringify({ path: "direct", ms: Math.round(ms) }));
}
if (NAT_SCRIPT) {
  // Home b's router picks a new port for each destination: only the relay gets through.
  execFileSync(NAT_SCRIPT, ["nat", NAT_PREFIX, "b", "symmetric"], { stdio: "inherit" });
} else {
  await b.evaluate(() => localStorage.setItem("spheres.callsRelayOnly", "1"));
}
await autoAnswer();
for (let i = 0; i < RUNS; i++) {
  const ms = await call(/^Connected through a relay/);
  result.relay.push(ms);
  console.log(JSON.stringify({ path: "relay", ms: Math.round(ms) }));
}
const base = median(result.baseline);
console.log(JSON.stringify({
  runs: RUNS,
  baseline_ms: Math.round(base),
  direct_ms: Math.round(median(result.direct)),
  relay_ms: Math.round(median(result.relay)),
  direct_ratio: +(median(result.direct) / base).toFixed(2),
  relay_ratio: +(median(result.relay) / base).toFixed(2),
}));
for (const b of new Set(Object.values(browsers))) await b.close();
