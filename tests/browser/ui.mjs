// Two nodes, two browsers: the web interface as people use it, in Debian's Chromium.
// Started by crates/spheres/tests/node.rs, which runs the nodes and passes:
//   NODE_A, NODE_B  the nodes' web addresses (A runs the household server; bob has an account)
//   NODE_C          a fresh node with nothing but its own defaults: carol, invited by a link
//   NODE_D          another fresh node: dave, who has an account on A's server (XMPP_SERVER)
//   BOB             bob's address; VIDEO: a WebM file; SHOTS: where screenshots go
// Exit 0 when every check passed. Every wait is bounded.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import http from "node:http";
import { axe, launch, login as loginWith, nodeApiFor, pages } from "./lib.mjs";

const { NODE_A, NODE_B, NODE_C, NODE_D, XMPP_SERVER, BOB, VIDEO, SHOTS } = process.env;
// Each node's data folder, where the CLI finds its API token (node.json, new at each start).
const DATA = { [NODE_A]: process.env.DATA_A, [NODE_B]: process.env.DATA_B, [NODE_C]: process.env.DATA_C, [NODE_D]: process.env.DATA_D };
// The node's API as the CLI calls it (this script is the test, not a browser).
const nodeApi = nodeApiFor(DATA);
const login = (page, node) => loginWith(nodeApi, page, node);
const WAIT = 60_000;
fs.mkdirSync(SHOTS, { recursive: true });

// Videos may start without a click (the test clicks anyway). "alice-node.test" is alice's
// node seen from "another device": same loopback address, but a Host that is not loopback,
// as for a visitor from the LAN.
const browser = await launch([
  "--autoplay-policy=no-user-gesture-required",
  "--host-resolver-rules=MAP alice-node.test 127.0.0.1",
]);
const timer = setTimeout(() => { console.error("the browser test took too long"); process.exit(2); }, 240_000);

// Every page the test opens: anything the page's policy blocked is a bug of ours.
const { blocked, newPage } = pages(browser);

// How far the script got, for the harness (each step has its own bound there).
const step = (name) => console.log(JSON.stringify({ event: name }));

async function shot(page, name) { await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true }); }

let a, b, c, d;
try {
  a = await newPage();
  b = await newPage();
  for (const p of [a, b]) p.setDefaultTimeout(WAIT);

  step("browser_up");
  // A creates a sphere and invites bob.
  await login(a, NODE_A);
  await a.goto(NODE_A + "/");
  await a.getByLabel("Name of the sphere").fill("Family");
  await a.getByRole("button", { name: "Create" }).click();
  await a.waitForURL(/#\/s\/Family$/);
  await a.getByLabel("Their address (name@server)").fill(BOB);
  await a.getByRole("button", { name: "Invite", exact: true }).click();
  await a.getByText(`Invited ${BOB}`).waitFor();

  // An invitation link for someone with no account, with its QR code.
  await a.getByRole("button", { name: "Invitation link" }).click();
  await a.getByText(/^spheres:join\?v=1&/).waitFor();
  await a.waitForFunction(() => { const q = document.querySelector("img.qr"); return q && q.complete && q.naturalWidth >= 256; }, null, { timeout: WAIT });
  const link = await a.locator("#invite-link code").textContent();
  step("link_made");

  // Carol has only a fresh node and the link: one screen, and she is in the sphere.
  c = await newPage();
  c.setDefaultTimeout(WAIT);
  await login(c, NODE_C);
  await c.goto(NODE_C + "/");
  await c.getByRole("link", { name: "Join with your invitation link" }).waitFor();
  await axe(c, "welcome");
  await shot(c, "welcome");
  await c.getByRole("link", { name: "Join with your invitation link" }).click();
  await c.getByRole("heading", { name: "Join with an invitation" }).waitFor();
  await c.getByLabel("Invitation link (starts with spheres:join)").fill("spheres:join?v=1&server=damaged");
  await c.getByText(/was it cut when copied\?/).waitFor();
  // The browser form of the link opens carol's node (on its own port here) with it filled in.
  const open = await a.locator("#open-link").getAttribute("href");
  assert.ok(open.startsWith("http://127.0.0.1:8427/#/join?link=spheres%3Ajoin"), open);
  await c.goto(NODE_C + "/" + open.slice(open.indexOf("#")));
  await c.getByText("alice@family.test invites you to the sphere “Family”.").waitFor();
  assert.equal(await c.getByLabel("Invitation link (starts with spheres:join)").inputValue(), link);
  await c.getByLabel("Your name").fill("Carol Martin");
  await c.getByText("it becomes your account name (carol.martin@family.test)").waitFor();
  await axe(c, "join");
  await shot(c, "join");
  await c.getByRole("button", { name: "Join", exact: true }).click();
  step("carol_join_clicked");
  // Her node restarts as the new account and joins: bounded below the harness's 90 s.
  await c.waitForURL(/#\/s\/Family$/, { timeout: 80_000 });
  await c.getByRole("heading", { name: "Chat" }).waitFor();
  console.log(JSON.stringify({ event: "carol_joined" }));
  const cs = await (await nodeApi(NODE_C, "/api/status")).json();
  assert.equal(cs.jid, "carol.martin@family.test", "carol's node now runs her new account");

  // Dave signs in with the account he has; a wrong password is said plainly first.
  d = await newPage();
  d.setDefaultTimeout(WAIT);
  await login(d, NODE_D);
  await d.goto(NODE_D + "/");
  await d.getByRole("link", { name: "Sign in with it" }).click();
  await d.getByRole("heading", { name: "Sign in with your XMPP account" }).waitFor();
  await d.getByLabel("Your address (name@server)").fill("dave@family.test");
  await d.getByLabel("Password").fill("not his password");
  await d.getByLabel("Server (host:port), only if your provider gave you one").fill(XMPP_SERVER);
  await d.getByRole("button", { name: "Sign in" }).click();
  await d.getByText("the server refused this address and password").waitFor();
  await axe(d, "sign-in");
  await d.getByLabel("Password").fill("dave-secret");
  await d.getByRole("button", { name: "Sign in" }).click();
  await d.getByRole("heading", { name: "Your spheres" }).waitFor({ timeout: 80_000 });
  await d.locator("#who", { hasText: "dave@family.test" }).waitFor();
  assert.equal((await (await nodeApi(NODE_D, "/api/status")).json()).household, null, "dave's node no longer runs a household");
  await d.close();
  console.log(JSON.stringify({ event: "dave_signed_in" }));

  // B sees the invitation arrive live and accepts it in its own browser.
  await login(b, NODE_B);
  await b.goto(NODE_B + "/");
  await axe(b, "home");
  await shot(b, "home");
  await b.getByRole("button", { name: "Join Family" }).click();
  await b.waitForURL(/#\/s\/Family$/);

  // The first load of a sphere page is lean: HTML, CSS and JS under 200 KB.
  const page = await newPage();
  let bytes = 0;
  page.on("response", async (r) => {
    const type = r.headers()["content-type"] || "";
    if (/text\/html|text\/css|javascript/.test(type)) bytes += (await r.body().catch(() => Buffer.alloc(0))).length;
  });
  await login(page, NODE_B);
  await page.goto(NODE_B + "/#/s/Family");
  await page.getByRole("heading", { name: "Chat" }).waitFor();
  await page.waitForLoadState("networkidle");
  console.log(JSON.stringify({ event: "first_load", bytes }));
  assert.ok(bytes < 200_000, `first load of a sphere page: ${bytes} bytes`);
  await page.close();

  // A drops a video; B sees it appear without reloading, opens it, and it plays before
  // B's node has all of it.
  await a.setInputFiles("#file-input", VIDEO);
  const name = path.basename(VIDEO);
  // The sharer's own gallery shows it too, once prepared, and the chat says so in words.
  await a.waitForFunction((n) => [...document.querySelectorAll(".card .name")].some((e) => e.textContent === n), name, { timeout: WAIT });
  await a.getByText(/alice shared clip\.webm \([0-9.]+ MB\)$/).waitFor();
  // The node made a poster for the video (ffmpeg), shown in the gallery.
  await a.waitForFunction(() => [...document.querySelectorAll(".card img")].some((i) => i.complete && i.naturalWidth > 0), null, { timeout: WAIT });
  const card = b.getByRole("button", { name: new RegExp(name.replace(".", "\\.")) });
  await card.waitFor();
  await b.waitForFunction((n) => [...document.querySelectorAll(".card .open")].some((e) => e.textContent.includes(n) && !e.disabled), name, { timeout: WAIT });
  await card.click();
  await b.waitForFunction(() => { const v = document.querySelector("#player"); return v && v.currentTime > 0.5 && !v.paused; }, null, { timeout: WAIT });
  const shares = await (await nodeApi(NODE_B, "/api/spheres/Family/shares")).json();
  const got = shares.find((s) => s.name === name);
  console.log(JSON.stringify({ event: "playing", have_bytes: got.have_bytes, total_bytes: got.total_bytes }));
  assert.ok(got.have_bytes < got.total_bytes, `playback must start before the download completes (${got.have_bytes} of ${got.total_bytes})`);
  await shot(b, "player");
  // Seeking works on a partial download too.
  await b.evaluate(() => { const v = document.querySelector("#player"); v.currentTime = Math.max(1, v.duration / 2); });
  await b.waitForFunction(() => { const v = document.querySelector("#player"); return v.currentTime > v.duration / 2 - 0.5 && v.readyState >= 2; }, null, { timeout: WAIT });
  await b.keyboard.press("Escape");
  // Carol, who joined with the link, sees it too.
  await c.getByRole("button", { name: new RegExp(name.replace(".", "\\.")) }).waitFor();

  // Chat, both ways.
  await a.getByLabel("Message").fill("Bonjour Bob, regarde la vidéo !");
  await a.getByRole("button", { name: "Send" }).click();
  await b.getByText("Bonjour Bob, regarde la vidéo !").waitFor();
  await b.getByLabel("Message").fill("Merci Alice 🎬");
  await b.getByRole("button", { name: "Send" }).click();
  await a.getByText("Merci Alice 🎬").waitFor();

  await axe(a, "sphere");
  await shot(a, "sphere");

  // 1:1: alice adds bob as a contact, bob accepts, they chat.
  await a.getByRole("link", { name: "Chats" }).click();
  // The sphere page has a field with the same label: wait for the chats page first.
  await a.getByRole("heading", { name: "Add a contact" }).waitFor();
  await a.getByLabel("Their address (name@server)").fill(BOB);
  await a.getByRole("button", { name: "Add" }).click();
  await b.getByRole("link", { name: "Chats" }).click();
  await b.getByRole("heading", { name: "Add a contact" }).waitFor();
  await b.getByRole("button", { name: "Accept" }).click();
  await b.getByRole("link", { name: "alice@family.test" }).click();
  await a.getByRole("link", { name: BOB }).click();
  await a.getByLabel("Message").fill("Tu viens dimanche ?");
  await a.getByRole("button", { name: "Send" }).click();
  await b.getByText("Tu viens dimanche ?").waitFor();
  await b.getByLabel("Message").fill("Oui, à midi");
  await b.getByRole("button", { name: "Send" }).click();
  await a.getByText("Oui, à midi").waitFor();
  await axe(a, "chat");
  await shot(a, "chat");
  await b.goto(NODE_B + "/#/s/Family");
  await b.getByRole("heading", { name: "Chat" }).waitFor();

  // The policy and settings pages work and are accessible.
  await b.getByLabel("Fetch automatically").selectOption("none");
  await b.waitForFunction(async () => (await (await fetch("/api/spheres")).json())[0].policy === "none", null, { timeout: WAIT });
  await b.getByRole("link", { name: "Settings" }).click();
  await b.getByRole("heading", { name: "Network" }).waitFor();
  await b.getByText("bob@family.test").first().waitFor();
  await b.getByLabel("Upload limit (kB/s, empty: none)").fill("500");
  await b.getByRole("button", { name: "Save the limits" }).click();
  await b.getByText("Limits saved").waitFor();
  const st = await (await nodeApi(NODE_B, "/api/status")).json();
  assert.equal(st.upload_limit, 500_000, "the upload limit applies at once");
  await axe(b, "settings");
  await shot(b, "settings");
  await b.goto(NODE_B + "/#/s/Family");
  await b.getByRole("heading", { name: "Chat" }).waitFor();

  // With "fetch automatically: none", a new video waits on bob's node, "not fetched"; a click
  // on its card fetches it and plays it at once, before bob's node has all of it.
  await a.goto(NODE_A + "/#/s/Family");
  await a.getByRole("heading", { name: "Chat" }).waitFor();
  await a.setInputFiles("#file-input", { name: "clip-2.webm", mimeType: "video/webm", buffer: fs.readFileSync(VIDEO) });
  await b.waitForFunction(() => [...document.querySelectorAll(".card.available .open")].some((e) => e.textContent.includes("clip-2.webm") && !e.disabled), null, { timeout: WAIT });
  await b.getByRole("button", { name: /clip-2\.webm/ }).click();
  await b.waitForFunction(() => { const v = document.querySelector("#player"); return v && v.currentTime > 0.5 && !v.paused; }, null, { timeout: WAIT });
  const second = (await (await nodeApi(NODE_B, "/api/spheres/Family/shares")).json()).find((s) => s.name === "clip-2.webm");
  console.log(JSON.stringify({ event: "playing_left_aside", have_bytes: second.have_bytes, total_bytes: second.total_bytes }));
  assert.ok(second.have_bytes < second.total_bytes, `a share left aside plays before it is all here (${second.have_bytes} of ${second.total_bytes})`);
  await b.keyboard.press("Escape");

  // Alice takes clip-2 back from her page, once she said yes; bob's page shows it withdrawn
  // and never offered him to take back alice's share.
  const clip2 = (p) => p.locator(".card", { hasText: "clip-2.webm" });
  assert.equal(await clip2(b).getByRole("button", { name: "Take back" }).count(), 0, "bob is offered to take back alice's share");
  a.once("dialog", (d) => d.accept());
  await clip2(a).getByRole("button", { name: "Take back" }).click();
  await a.getByText("clip-2.webm taken back").waitFor();
  await b.waitForFunction(() => [...document.querySelectorAll(".card.withdrawn")].some((e) => e.textContent.includes("clip-2.webm")), null, { timeout: WAIT });

  // Alice makes a link to her first video, with a password; someone with no account, in a
  // browser that never logged in, gives the password, opens it and watches it. Alice revokes
  // it from her page, and it opens nothing more.
  await a.locator(".card", { hasText: name }).getByRole("button", { name: "Link", exact: true }).click();
  await a.getByLabel(/^Password \(optional/).fill("bouchon lyonnais");
  await a.getByRole("button", { name: "Make the link" }).click();
  const linkUrl = await a.locator("#share-link code").textContent();
  assert.match(linkUrl, /\/l\/[0-9a-f]{64}$/, linkUrl);
  await a.locator("#links li", { hasText: name }).getByText("password").waitFor();
  const stranger = await newPage();
  await stranger.goto(linkUrl);
  await stranger.getByRole("heading", { name: "This link needs a password" }).waitFor();
  assert.equal(await stranger.locator("video").count(), 0, "the video shows before the password");
  await axe(stranger, "link-password");
  await stranger.getByLabel("Password").fill("bouchon lyonnais");
  await stranger.getByRole("button", { name: "Open" }).click();
  await stranger.getByRole("heading", { name }).waitFor();
  await stranger.locator("video").evaluate((v) => { v.muted = true; return v.play(); });
  await stranger.waitForFunction(() => { const v = document.querySelector("video"); return v && v.currentTime > 0.5; }, null, { timeout: WAIT });
  await axe(stranger, "link");
  await shot(stranger, "link");
  await a.locator("#links li", { hasText: name }).getByRole("button", { name: "Revoke" }).click();
  await a.getByText(`The link to ${name} opens nothing from now on.`).waitFor();
  await stranger.reload();
  await stranger.getByRole("heading", { name: "This link was revoked" }).waitFor();
  await stranger.close();

  // From another device (a name that is not loopback), the node wants its password.
  await a.goto(NODE_A + "/#/settings");
  await a.getByLabel("Web password for your other devices").fill("correct horse battery");
  await a.getByRole("button", { name: "Save the password" }).click();
  await a.getByText("Password saved").waitFor();
  const remote = await newPage();
  await remote.goto(NODE_A.replace("127.0.0.1", "alice-node.test") + "/");
  await remote.getByRole("heading", { name: "Log in" }).waitFor();
  await remote.getByLabel("Password").fill("wrong password!");
  await remote.getByRole("button", { name: "Log in" }).click();
  await remote.getByText("wrong password").waitFor();
  await remote.getByLabel("Password").fill("correct horse battery");
  await remote.getByRole("button", { name: "Log in" }).click();
  await remote.getByRole("link", { name: "Family" }).waitFor();
  const cookies = await remote.context().cookies();
  const session = cookies.find((c) => c.name === "spheres_session");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
  await axe(remote, "login");
  await remote.close();
  await a.goto(NODE_A + "/#/s/Family");
  await a.getByRole("heading", { name: "Chat" }).waitFor();

  // A hostile page, in the browser where alice is logged in to her node: another port on
  // the same machine, so the same site, and her SameSite cookie goes along. It tries a simple
  // cross-origin POST, one with our header (needs a preflight the node never grants), and
  // a frame of the node's page (clickjacking). Nothing may change, nothing may show.
  const hostile = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>hostile</title><iframe id="f" src="${NODE_A}/"></iframe><script>
      const api = ${JSON.stringify(NODE_A)} + "/api/spheres";
      Promise.allSettled([
        fetch(api, { method: "POST", mode: "no-cors", credentials: "include", headers: { "content-type": "text/plain" }, body: '{"name":"Evil"}' }),
        fetch(api, { method: "POST", credentials: "include", headers: { "content-type": "application/json", "x-spheres": "1" }, body: '{"name":"Evil 2"}' }),
      ]).then(() => { document.title = "done"; });
    </script>`);
  });
  await new Promise((ok) => hostile.listen(0, "127.0.0.1", ok));
  const blockedBefore = blocked.length;
  await a.goto(`http://127.0.0.1:${hostile.address().port}/`);
  await a.waitForFunction(() => document.title === "done", null, { timeout: WAIT });
  const framed = a.frames().find((f) => f !== a.mainFrame());
  const shown = framed ? await framed.locator("#app").count().catch(() => 0) : 0;
  assert.equal(shown, 0, "the node's page showed inside another site's frame");
  const spheresNow = await (await nodeApi(NODE_A, "/api/spheres")).json();
  assert.ok(!spheresNow.some((s) => s.name.startsWith("Evil")), `a hostile page changed the node: ${JSON.stringify(spheresNow)}`);
  hostile.close();
  // The browser says why it refused the frame: our policy, which is the point here.
  const refusals = blocked.splice(blockedBefore);
  assert.ok(refusals.every((m) => /frame-ancestors/.test(m)), `unexpected: ${refusals.join(" | ")}`);
  console.log(JSON.stringify({ event: "hostile_page_refused", refusals: refusals.length }));
  await a.goto(NODE_A + "/#/s/Family");
  await a.getByRole("heading", { name: "Chat" }).waitFor();

  // French, from the switch, kept across reloads.
  await a.getByLabel("Language").selectOption("fr");
  await a.getByRole("heading", { name: "Discussion" }).waitFor();
  await a.reload();
  await a.getByRole("heading", { name: "Discussion" }).waitFor();
  await shot(a, "sphere-fr");

  // Unread messages show on the spheres list until the sphere is opened.
  await a.goto(NODE_A + "/");
  await a.getByRole("heading", { name: /Vos sphères|Your spheres/ }).waitFor();
  await b.getByLabel("Message").fill("Un message de plus");
  await b.getByRole("button", { name: "Send" }).click();
  await a.getByText(/^1 (new|non lus)$/).waitFor();

  // Bob's node restarts under his open page: the page says so, reconnects by itself, and
  // live updates flow again.
  await b.goto(NODE_B + "/#/s/Family");
  await b.getByRole("heading", { name: "Chat" }).waitFor();
  console.log(JSON.stringify({ event: "restart_b" }));
  await b.getByText("Connection to your node lost; reconnecting…").waitFor({ timeout: WAIT });
  await b.waitForFunction(() => document.getElementById("live").textContent === "", null, { timeout: 90_000 });
  console.log(JSON.stringify({ event: "b_back" }));
  await a.goto(NODE_A + "/#/s/Family");
  await a.getByLabel(/^(Message)$/).fill("Tu es revenu ?");
  await a.getByRole("button", { name: /^(Send|Envoyer)$/ }).click();
  await b.getByText("Tu es revenu ?").waitFor({ timeout: WAIT });

  // Phone width: still usable (nothing wider than the screen).
  await b.setViewportSize({ width: 360, height: 740 });
  const overflow = await b.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than a phone`);
  await shot(b, "phone");
  assert.deepEqual(blocked, [], "the pages' security policy blocked something they do");
  console.log(JSON.stringify({ event: "ok" }));
} catch (e) {
  // What each side showed, to tell why.
  for (const [who, p, node] of [["A", a, NODE_A], ["B", b, NODE_B], ["C", c, NODE_C], ["D", d, NODE_D]]) {
    if (!p) continue;
    // Every read bounded: a page that never loaded must not hold up the report.
    const quick = { timeout: 1000 };
    const ask = (q) => nodeApi(node, q, { signal: AbortSignal.timeout(3000) }).then((r) => r.json()).catch((e) => String(e));
    console.log(JSON.stringify({ event: "state", who, url: p.url(),
      live: await p.locator("#live").textContent(quick).catch(() => null),
      main: (await p.locator("main").innerText(quick).catch(() => "")).slice(0, 400),
      status: await ask("/api/status").then((s) => (s && s.jid ? { jid: s.jid, xmpp: s.xmpp, spheres: s.spheres } : s)),
      spheres: await ask("/api/spheres"),
      shares: await ask("/api/spheres/Family/shares") }));
    await shot(p, `failure-${who}`).catch(() => {});
  }
  throw e;
} finally {
  clearTimeout(timer);
  await browser.close();
}
