// Calls across two home routers (issue 17), in Debian's Chromium. Started by
// crates/spheres/tests/calls.rs, which makes the network (tests/peers/nat-netns.sh: home a and
// home b, each a computer behind its own NAT router, and "the internet" where the nodes,
// Prosody and coturn listen) and passes NODE_A, NODE_B (the nodes' web addresses, on the
// internet side), DATA_A, DATA_B, NETNS_A, NETNS_B (the homes' computers, where each browser
// runs), NAT_SCRIPT and NAT_PREFIX (to change a router) and SHOTS.
// First both routers keep a computer's port for every destination (cone): the call goes
// straight from home to home, holes punched through both routers, no relay. Then home b's
// router picks a new port for each destination (symmetric): only the household's relay
// (coturn) gets the call through, and both pages say so. Media measured both ways, each time.
// STAGES=outside instead: the household (alice's node, Prosody, coturn) is in home a, behind
// its router, which forwards the relay's ports; bob is elsewhere, behind a symmetric router:
// only the relay, reached through home a's router, gets the call through. Alice's Settings
// say the relay is reached from the internet (RELAY_OUTSIDE).
// Exit 0 when every check passed. Every wait is bounded.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { callBrowser, login as loginWith, loginFromPage, nodeApiFor, received } from "./lib.mjs";

const { NODE_A, NODE_B, NETNS_A, NETNS_B, NAT_SCRIPT, NAT_PREFIX, RELAY_OUTSIDE } = process.env;
const STAGES = (process.env.STAGES ?? "direct,relayed").split(",");
const dataOf = { [NODE_A]: process.env.DATA_A, [NODE_B]: process.env.DATA_B };
const nodeApi = nodeApiFor(dataOf);
// A node behind a router is out of this script's reach: its page asks for the login.
const login = (page, node) => STAGES.includes("outside") ? loginFromPage(dataOf, page, node) : loginWith(nodeApi, page, node);
const secure = [NODE_A, NODE_B];
const homeA = await callBrowser(45_000, 200_000, { netns: NETNS_A, secure });
const homeB = await callBrowser(45_000, 200_000, { netns: NETNS_B, secure });
const { step, shot } = homeA;

const panel = (p) => p.locator("#call");
const status = (p) => p.locator("#call-status");

/** Alice calls bob; he accepts; both pages connected, saying `how` (alice's page `howA`);
 *  media both ways. */
async function callAcross(a, b, how, howA = how) {
  await a.getByRole("button", { name: "Video call" }).click();
  await panel(b).getByRole("button", { name: "Accept", exact: true }).click();
  for (const [p, said] of [[a, howA], [b, how]]) await status(p).getByText(said).waitFor();
  for (const [p, who] of [[a, "alice"], [b, "bob"]]) {
    const got = await received(p, 2500);
    assert.ok(got.frames >= 5 && got.width > 0, `${who} sees the other's video: ${JSON.stringify(got)}`);
    assert.ok(got.audioTracks === 1 && got.loudest > 0.01, `${who} hears the other: ${JSON.stringify(got)}`);
  }
}

/** The candidates of the path a page's call took (its connections are kept by an init
 *  script: the page's own modules do not hand them out). */
async function pathOf(p) {
  return p.evaluate(async () => {
    const pcs = /** @type {any} */ (window).__pcs.filter((pc) => pc.connectionState === "connected");
    const stats = await pcs[pcs.length - 1].getStats();
    let pair = null;
    stats.forEach((r) => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
    const c = (id) => { const x = stats.get(id); return x && { type: x.candidateType, address: x.address, port: x.port }; };
    return pair && { local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId) };
  });
}

async function hangUp(a, b) {
  await panel(a).getByRole("button", { name: "Hang up" }).click();
  await status(b).getByText("alice hung up.").waitFor();
  for (const p of [a, b]) await panel(p).waitFor({ state: "detached" });
}

let a, b;
try {
  a = await homeA.newPage();
  b = await homeB.newPage();
  for (const p of [a, b]) await p.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    /** @type {any} */ (window).__pcs = [];
    window.RTCPeerConnection = /** @type {any} */ (class extends Native {
      constructor(/** @type {any} */ config) { super(config); /** @type {any} */ (window).__pcs.push(this); }
    });
  });
  await login(a, NODE_A);
  await login(b, NODE_B);
  // The pages come from the internet side, through each home's router.
  assert.equal(await a.evaluate(() => window.isSecureContext), true, "the test treats the node's origin as secure");
  await b.goto(NODE_B + "/#/feed");
  await a.goto(NODE_A + "/#/chat/" + encodeURIComponent("bob@family.test"));

  if (STAGES.includes("direct")) {
    // Two cone routers: straight from home to home.
    await callAcross(a, b, /^Connected · \d/);
    await shot(a, "call-nat-direct");
    step("direct");
    await hangUp(a, b);
  }

  if (STAGES.includes("relayed")) {
    // Home b's router turns symmetric: the call goes through the household's relay.
    execFileSync(NAT_SCRIPT, ["nat", NAT_PREFIX, "b", "symmetric"], { stdio: "inherit" });
    await callAcross(a, b, /^Connected through a relay/);
    await shot(b, "call-nat-relayed");
    step("relayed");
    await hangUp(a, b);
  }

  if (STAGES.includes("outside")) {
    // The household's relay, behind home a's router, reached by bob from elsewhere. (Alice's
    // browser shares its computer with the relay, and the router turns packets back to it:
    // neither page sees a relayed candidate in the path it took.)
    await callAcross(a, b, /^Connected/, /^Connected/);
    // Bob's end of it crosses home a's router at its outside address (without the forwarded
    // ports no path exists: his router picks a new port for each destination).
    const path = await pathOf(b);
    const host = RELAY_OUTSIDE?.replace(/:\d+$/, "");
    assert.ok(path && [path.local, path.remote].some((c) => c?.address === host), `bob's path crosses home a's router: ${JSON.stringify(path)}`);
    await shot(b, "call-nat-outside");
    await hangUp(a, b);
    await a.goto(NODE_A + "/#/settings");
    const relay = a.locator("#calls-relay", { hasText: "from the internet" });
    await relay.waitFor({ timeout: 10_000 });
    const said = await relay.textContent();
    assert.ok(said?.includes(RELAY_OUTSIDE ?? "?") && said.includes("from the internet"), `alice's Settings say where the relay is reached: ${said}`);
    step("outside");
  }

  for (const s of [homeA, homeB]) assert.deepEqual(s.blocked, [], "the pages asked for nothing outside the nodes");
  step("ok");
} catch (e) {
  console.error(e);
  for (const [p, name] of [[a, "call-nat-failed-a"], [b, "call-nat-failed-b"]]) if (p) await shot(p, name).catch(() => {});
  process.exitCode = 1;
} finally {
  for (const s of [homeA, homeB]) { clearTimeout(s.timer); await s.browser.close(); }
}
