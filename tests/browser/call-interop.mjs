// A call between alice's page (Debian's Chromium, fake camera and microphone) and a Jingle
// peer we did not write (tests/peers/jingle_peer.py: slixmpp and aiortc), both ways, then a
// call in a sphere that the peer joins. Started
// by crates/spheres/tests/calls.rs, which runs alice's node and the peer (dave), passes
// NODE_A, DATA_A and SHOTS, and writes a line on stdin when the peer has done its part.
// Exit 0 when every check passed. Every wait is bounded.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { launch, login, nodeApiFor, pages, received } from "./lib.mjs";

const { NODE_A, SHOTS } = process.env;
const nodeApi = nodeApiFor({ [NODE_A]: process.env.DATA_A });
const step = (name) => console.log(JSON.stringify({ event: name }));
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((ok) => lines.once("line", ok));
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await launch(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required"]);
const timer = setTimeout(() => { console.error("the call interop test took too long"); process.exit(2); }, 150_000);
const { blocked, newPage } = pages(browser);
let a;
try {
  a = await newPage();
  a.setDefaultTimeout(30_000);
  await login(nodeApi, a, NODE_A);
  await a.goto(NODE_A + "/#/chat/" + encodeURIComponent("dave@family.test"));
  await a.getByRole("button", { name: "Video call" }).waitFor();
  step("ready");

  // Dave calls: alice's page rings, she accepts, media flows both ways.
  const panel = a.locator("#call");
  await panel.getByRole("heading", { name: "dave@family.test is calling you (video)" }).waitFor();
  await panel.getByRole("button", { name: "Accept", exact: true }).click();
  await a.locator("#call-status").getByText(/^Connected/).waitFor();
  // aiortc encodes in Python: a few frames a second on a busy machine, so a longer look.
  let got = await received(a, 4000);
  assert.ok(got.frames >= 5 && got.width > 0 && got.loudest > 0.01, `alice gets dave's media: ${JSON.stringify(got)}`);
  step("got_media");
  await a.locator("#call-status").getByText("dave hung up.").waitFor();
  step("they_hung_up");

  // Alice calls dave, who answers by himself; she hangs up when the test says.
  await a.getByRole("button", { name: "Video call" }).click();
  await a.locator("#call-status").getByText(/^Connected/).waitFor();
  got = await received(a, 4000);
  assert.ok(got.frames >= 5 && got.width > 0 && got.loudest > 0.01, `alice gets dave's media when she calls: ${JSON.stringify(got)}`);
  await a.screenshot({ path: path.join(SHOTS, "call-interop.png") });
  step("got_media_2");
  assert.equal(await nextLine(), "hangup");
  await panel.getByRole("button", { name: "Hang up" }).click();
  await a.locator("#call-status").getByText("Call ended.").waitFor();

  // A call in the sphere: alice starts it; dave's client joins the room's call (XEP-0272) and
  // opens the session itself, as Dino has newcomers do. Media both ways; he leaves.
  await a.goto(NODE_A + "/#/s/Family");
  const group = a.locator("#sphere-call");
  await a.locator("#call-bar").getByRole("button", { name: "🎥 Video call everyone" }).click();
  await group.getByText("Waiting for others to join…").waitFor();
  step("in_sphere_call");
  await a.waitForFunction(() => [...document.querySelectorAll("#sphere-call figcaption")]
    .some((c) => /^dave · connected/.test(c.textContent || "")), null, { timeout: 30_000 });
  const tile = await group.locator("video[aria-label='dave']").getAttribute("id");
  got = await received(a, 4000, tile || "");
  assert.ok(got.frames >= 5 && got.width > 0 && got.loudest > 0.01, `alice gets dave's media in the sphere's call: ${JSON.stringify(got)}`);
  step("group_media");
  assert.equal(await nextLine(), "left");
  await group.getByText("Waiting for others to join…").waitFor();
  await group.getByRole("button", { name: "Leave the call" }).click();
  await group.waitFor({ state: "detached" });
  assert.deepEqual(blocked, [], "nothing blocked by the page's policy");
  step("ok");
} catch (e) {
  console.error(e);
  // What the node knew of the calls: their state, the other side's description and candidates.
  console.error(JSON.stringify(await (await nodeApi(NODE_A, "/api/calls")).json()).slice(0, 6000));
  if (a) await a.screenshot({ path: path.join(SHOTS, "call-interop-failed.png") }).catch(() => {});
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  lines.close();
  await browser.close();
}
