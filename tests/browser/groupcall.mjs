// A call in a sphere, in Debian's Chromium, as three members use it (issue 17). Started by
// crates/spheres/tests/calls.rs, which runs three nodes (alice, who owns "Family", bob and
// carol, members of it) and passes NODE_A…C (web addresses), DATA_A…C and SHOTS. Chromium's
// fake camera and microphone stand in for real ones; the media goes browser to browser over
// loopback (a mesh: each page holds a connection with each other one), the signalling through
// the nodes and the household's Prosody. Exit 0 when every check passed. Every wait is
// bounded.
import assert from "node:assert/strict";
import { axe, callBrowser, login as loginWith, nodeApiFor, received } from "./lib.mjs";

const { NODE_A, NODE_B, NODE_C } = process.env;
const nodeApi = nodeApiFor({ [NODE_A]: process.env.DATA_A, [NODE_B]: process.env.DATA_B, [NODE_C]: process.env.DATA_C });
const login = (page, node) => loginWith(nodeApi, page, node);
const WAIT = 45_000;
const { browser, blocked, timer, newPage, shot, step } = await callBrowser(WAIT, 240_000);

const panel = (p) => p.locator("#sphere-call");
const bar = (p) => p.locator("#call-bar");
const tiles = (p) => panel(p).locator("video[id^='call-leg-']");
const family = (node) => node + "/#/s/Family";

/** Waits until `p`'s panel shows `n` connections, all connected. */
async function connected(p, n) {
  await p.waitForFunction((n) => {
    const caps = [...document.querySelectorAll("#sphere-call figcaption")].slice(1);
    return caps.length === n && caps.every((c) => /connected/.test(c.textContent || ""));
  }, n, { timeout: WAIT });
}

/** What arrives on each of `p`'s connections, by who sends it: looked at again (a few times,
 *  1.5 s each) until sound arrives, and frames from those who send video (`video`), as a
 *  connection just up may take a moment to play. */
async function measure(p, video) {
  const out = {};
  for (const v of await tiles(p).all()) {
    const id = await v.getAttribute("id");
    const name = await v.getAttribute("aria-label");
    for (let tries = 0; tries < 6; tries++) {
      out[name] = await received(p, 1500, id);
      if (out[name].loudest > 0.01 && (!video.includes(name) || out[name].frames >= 5)) break;
    }
  }
  return out;
}

let a, b, c;
try {
  a = await newPage();
  b = await newPage();
  c = await newPage({ width: 390, height: 844 });
  await login(a, NODE_A);
  await login(b, NODE_B);
  await login(c, NODE_C);
  for (const [p, node] of [[a, NODE_A], [b, NODE_B]]) await p.goto(family(node));
  await c.goto(NODE_C + "/#/feed");
  // Settings say how far the household's relay reaches (here: this computer).
  await a.goto(NODE_A + "/#/settings");
  await a.locator("#calls-relay").getByText(/^Relay: 127\.0\.0\.1:\d+, on this computer only/).waitFor();
  await a.goto(family(NODE_A));

  // Alice starts a video call in the sphere: she waits alone; bob's sphere page shows the
  // call, live, and carol, reading her feed, gets a notice.
  await bar(a).getByRole("button", { name: "🎥 Video call everyone" }).click();
  await panel(a).getByText("Waiting for others to join…").waitFor();
  await bar(b).getByText("A call is on: alice.").waitFor();
  const notice = c.locator("#call-notice");
  await notice.getByText(/^📞 A call is on in Family: alice(, bob)?\.$/).waitFor();
  await axe(c, "a call's notice");
  await shot(c, "sphere-call-notice");
  step("started");

  // Bob joins with video, carol (on a phone) from the notice, without: three connections, one
  // per pair.
  await bar(b).getByRole("button", { name: "Join", exact: true }).click();
  await notice.getByRole("button", { name: "Join without video" }).click();
  await c.waitForURL(/#\/s\/Family$/);
  for (const p of [a, b, c]) await connected(p, 2);
  // Everyone hears the two others, and sees those who send video (alice and bob).
  const video = ["alice", "bob"];
  const heard = { alice: await measure(a, video), bob: await measure(b, video), carol: await measure(c, video) };
  for (const [me, got] of Object.entries(heard)) {
    const others = ["alice", "bob", "carol"].filter((x) => x !== me);
    assert.deepEqual(Object.keys(got).sort(), others, `${me}'s connections: ${JSON.stringify(got)}`);
    for (const them of others) {
      assert.ok(got[them].audioTracks === 1 && got[them].loudest > 0.01, `${me} hears ${them}: ${JSON.stringify(got[them])}`);
      if (them !== "carol") assert.ok(got[them].frames >= 5 && got[them].width > 0, `${me} sees ${them}: ${JSON.stringify(got[them])}`);
      else assert.equal(got[them].frames, 0, `carol sends no video: ${JSON.stringify(got[them])}`);
    }
  }
  await shot(a, "sphere-call");
  await shot(c, "sphere-call-phone");
  step("mesh");

  // The page says plainly where the media goes; the panel fills a phone's screen; no serious
  // accessibility issue.
  await panel(a).getByText("Sound and video go straight between the browsers in the call, encrypted end to end: no server sees them.").waitFor();
  const box = await panel(c).boundingBox();
  assert.ok(box && box.width >= 380, `the call fills a phone's width: ${JSON.stringify(box)}`);
  await axe(a, "a sphere call");
  // The node lists who is in the call.
  const call = await (await nodeApi(NODE_C, "/api/spheres/Family/call")).json();
  assert.deepEqual(call.people.map((x) => [x.jid, x.video, x.me]),
    [["carol@family.test", false, true], ["alice@family.test", true, false], ["bob@family.test", true, false]]);
  assert.equal(call.joined, true);
  step("direct");

  // Bob leaves: alice and carol go on, with one connection each.
  await panel(b).getByRole("button", { name: "Leave the call" }).click();
  await panel(b).waitFor({ state: "detached" });
  for (const p of [a, c]) await connected(p, 1);
  await bar(b).getByText("A call is on: alice, carol.").waitFor();
  // In French, the bar says the same.
  await b.getByLabel("Language").selectOption("fr");
  await bar(b).getByText("Un appel est en cours : alice, carol.").waitFor();
  await b.locator("#lang").selectOption("en");
  step("left");

  // Bob comes back: the mesh closes again.
  await bar(b).getByRole("button", { name: "Join", exact: true }).click();
  for (const p of [a, b, c]) await connected(p, 2);
  step("rejoined");

  // Alice's page goes away (closed, not left): the others' nodes see her leave the room's
  // call, and their pages drop her.
  await a.close();
  for (const p of [b, c]) await connected(p, 1);
  await bar(b).getByText("You are in the call with carol.").waitFor();
  // Carol and bob leave; the bar offers a new call.
  await panel(c).getByRole("button", { name: "Leave the call" }).click();
  await panel(b).getByText("Waiting for others to join…").waitFor();
  await panel(b).getByRole("button", { name: "Leave the call" }).click();
  await bar(c).getByRole("button", { name: "📞 Call everyone" }).waitFor();
  step("page_closed");

  assert.deepEqual(blocked, [], "the pages asked for nothing outside the nodes");
  step("ok");
} catch (e) {
  console.error(e);
  for (const [p, name] of [[a, "a"], [b, "b"], [c, "c"]]) if (p && !p.isClosed()) await shot(p, `sphere-call-failed-${name}`).catch(() => {});
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
