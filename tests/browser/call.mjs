// Calls in Debian's Chromium, as two contacts use them (issue 17). Started by
// crates/spheres/tests/calls.rs, which runs the nodes (alice and bob, contacts of each other,
// both online) and passes NODE_A, NODE_B (web addresses), DATA_A, DATA_B (their data folders)
// and SHOTS. Chromium's fake camera and microphone stand in for real ones; the media goes
// browser to browser over loopback, the signalling through both nodes and the household's
// Prosody. Exit 0 when every check passed. Every wait is bounded.
import assert from "node:assert/strict";
import { axe, callBrowser, login as loginWith, nodeApiFor, received } from "./lib.mjs";

const { NODE_A, NODE_B } = process.env;
const nodeApi = nodeApiFor({ [NODE_A]: process.env.DATA_A, [NODE_B]: process.env.DATA_B });
const login = (page, node) => loginWith(nodeApi, page, node);
const { browser, blocked, timer, newPage, shot, step } = await callBrowser(30_000, 150_000);

const panel = (p) => p.locator("#call");
const status = (p) => p.locator("#call-status");

let a, b;
try {
  a = await newPage();
  b = await newPage();
  await login(a, NODE_A);
  await login(b, NODE_B);
  await b.goto(NODE_B + "/#/feed");
  await a.goto(NODE_A + "/#/chat/" + encodeURIComponent("bob@family.test"));

  // A video call: bob's page rings, whatever view is open.
  await a.getByRole("button", { name: "Video call" }).click();
  await status(a).getByText("Ringing bob…").waitFor();
  const ringing = panel(b);
  await ringing.getByRole("heading", { name: "alice@family.test is calling you (video)" }).waitFor();
  assert.match(await b.title(), /Incoming call/);
  await axe(b, "a call ringing");
  await shot(b, "call-ringing");
  step("rang");

  await ringing.getByRole("button", { name: "Accept", exact: true }).click();
  await status(a).getByText(/^Connected/).waitFor();
  await status(b).getByText(/^Connected/).waitFor();
  // Both ways: frames arrive and play, and sound.
  for (const [p, who] of [[a, "alice"], [b, "bob"]]) {
    const got = await received(p);
    assert.ok(got.frames >= 5 && got.width > 0, `${who} sees the other's video: ${JSON.stringify(got)}`);
    assert.ok(got.audioTracks === 1 && got.loudest > 0.01, `${who} hears the other: ${JSON.stringify(got)}`);
  }
  await shot(a, "call-connected");
  step("media_flows");

  // Alice turns her camera off, then hangs up: bob's page says so.
  await panel(a).getByRole("button", { name: "Camera off" }).click();
  await panel(a).getByRole("button", { name: "Camera on" }).waitFor();
  await panel(a).getByRole("button", { name: "Hang up" }).click();
  await status(b).getByText("alice hung up.").waitFor();
  await status(a).getByText("Call ended.").waitFor();
  const calls = await (await nodeApi(NODE_B, "/api/calls")).json();
  assert.equal(calls[0].state, "ended");
  assert.equal(calls[0].end, "they_hung_up");
  assert.ok(calls[0].answered && calls[0].ended >= calls[0].answered);
  step("hung_up");

  // Bob calls alice, audio only; she declines.
  await b.goto(NODE_B + "/#/chat/" + encodeURIComponent("alice@family.test"));
  await b.getByRole("button", { name: "Call", exact: true }).click();
  await panel(a).getByRole("heading", { name: "bob@family.test is calling you" }).waitFor();
  await panel(a).getByRole("button", { name: "Decline" }).click();
  await status(b).getByText("alice declined the call.").waitFor();
  step("declined");

  // Alice calls bob and calls it off before he answers: a missed call for him. On a phone.
  await b.setViewportSize({ width: 390, height: 844 });
  await a.getByRole("button", { name: "Call", exact: true }).click();
  await panel(b).getByRole("heading", { name: "alice@family.test is calling you" }).waitFor();
  const box = await panel(b).boundingBox();
  assert.ok(box && box.width >= 380, `the ringing panel fills a phone's width: ${JSON.stringify(box)}`);
  await panel(a).getByRole("button", { name: "Hang up" }).click();
  await status(b).getByText("Missed call from alice.").waitFor();
  step("missed");

  // The conversation keeps the calls, from the archive: who called, how it went, how long.
  await b.setViewportSize({ width: 1280, height: 720 });
  await b.goto(NODE_B + "/#/chat/" + encodeURIComponent("alice@family.test"));
  const history = b.locator("#conversation");
  await history.getByText("Missed call from alice").waitFor();
  await history.getByText("Call from you, declined").waitFor();
  await history.getByText(/^📞 alice called \(video\) · 0:\d\d$/).waitFor();
  step("history");

  // In French.
  await b.getByLabel("Language").selectOption("fr");
  await a.getByRole("button", { name: "Call", exact: true }).click();
  await panel(b).getByRole("heading", { name: "alice@family.test vous appelle" }).waitFor();
  await panel(b).getByRole("button", { name: "Refuser" }).click();
  await status(a).getByText("bob declined the call.").waitFor();
  step("french");

  // Bob hides his address from the people he calls (Settings): the call goes through the
  // household's TURN server (coturn, credentials from Prosody, XEP-0215), media flows, and
  // his page says the path has a relay.
  await b.locator("#lang").selectOption("en");
  await b.goto(NODE_B + "/#/settings");
  await b.getByLabel("Hide this browser's address from the people I call").check();
  await b.reload();
  assert.ok(await b.getByLabel("Hide this browser's address from the people I call").isChecked(), "the choice stays");
  await b.goto(NODE_B + "/#/feed");
  await a.getByRole("button", { name: "Video call" }).click();
  await panel(b).getByRole("button", { name: "Accept", exact: true }).click();
  await status(b).getByText(/^Connected through a relay/).waitFor();
  const relayedMedia = await received(b);
  assert.ok(relayedMedia.frames >= 5 && relayedMedia.width > 0 && relayedMedia.loudest > 0.01,
    `bob gets alice's media through the relay: ${JSON.stringify(relayedMedia)}`);
  await panel(b).getByRole("button", { name: "Hang up" }).click();
  await status(a).getByText("bob hung up.").waitFor();
  step("relayed");

  assert.deepEqual(blocked, [], "nothing blocked by the pages' policy");
  step("ok");
} catch (e) {
  console.error(e);
  for (const [p, name] of [[a, "call-failed-alice"], [b, "call-failed-bob"]]) if (p) await shot(p, name).catch(() => {});
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
