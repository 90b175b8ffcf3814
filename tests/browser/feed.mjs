// The feed page (#/feed) in Debian's Chromium, as two contacts use it. Started by
// crates/spheres/tests/feed.rs, which runs the nodes (alice and bob, contacts already, both
// in alice's sphere "Family") and
// passes NODE_A, NODE_B (web addresses), DATA_A, DATA_B (their data folders), SHOTS.
// Exit 0 when every check passed. Every wait is bounded.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { axe, launch, login as loginWith, nodeApiFor, pages } from "./lib.mjs";

const { NODE_A, NODE_B, SHOTS } = process.env;
const nodeApi = nodeApiFor({ [NODE_A]: process.env.DATA_A, [NODE_B]: process.env.DATA_B });
const login = (page, node) => loginWith(nodeApi, page, node);
const WAIT = 60_000;
const step = (name) => console.log(JSON.stringify({ event: name }));
fs.mkdirSync(SHOTS, { recursive: true });

const browser = await launch();
const timer = setTimeout(() => { console.error("the feed browser test took too long"); process.exit(2); }, 150_000);
const { blocked, newPage: page } = pages(browser);
async function newPage() {
  const p = await page();
  p.setDefaultTimeout(WAIT);
  return p;
}
async function shot(page, name) { await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true }); }

let a, b;
try {
  a = await newPage();
  b = await newPage();
  await login(a, NODE_A);
  await login(b, NODE_B);
  await b.goto(NODE_B + "/#/feed");
  await b.getByRole("heading", { name: "Feed" }).waitFor();
  await a.goto(NODE_A + "/");
  await a.getByRole("link", { name: "Feed" }).click();
  await a.getByRole("heading", { name: "Feed" }).waitFor();
  step("feed_open");

  // A draft survives a refresh.
  await a.getByLabel("What's new?").fill("Back from Lyon: photos soon");
  await a.reload();
  assert.equal(await a.getByLabel("What's new?").inputValue(), "Back from Lyon: photos soon");
  await a.getByLabel("For").selectOption("everyone");
  await a.getByRole("button", { name: "Post", exact: true }).click();
  await a.locator(".post-text", { hasText: "Back from Lyon: photos soon" }).waitFor();
  assert.equal(await a.getByLabel("What's new?").inputValue(), "", "the box is empty once posted");

  // Bob's open page shows it as it comes, with who wrote it and for whom.
  const post = b.locator("li.post", { hasText: "Back from Lyon: photos soon" });
  await post.waitFor();
  await post.getByText("everyone").waitFor();
  step("post_seen");

  // Bob comments; alice's page counts it as it comes.
  await post.getByRole("button", { name: "0 comments" }).click();
  await post.getByLabel("Comment").fill("Can't wait!");
  await post.getByRole("button", { name: "Comment", exact: true }).click();
  await post.getByText("Can't wait!").waitFor();
  await a.locator("li.post", { hasText: "Back from Lyon" }).getByRole("button", { name: "1 comment" }).waitFor();
  // Bob reacts; alice's page counts it.
  await post.getByRole("button", { name: "React with 👍" }).click();
  await a.locator("li.post", { hasText: "Back from Lyon" }).getByRole("button", { name: "👍: 1 reaction" }).waitFor();
  assert.equal(await post.getByRole("button", { name: "👍: 1 reaction" }).getAttribute("aria-pressed"), "true");
  step("comment_seen");
  await axe(a, "feed");
  await axe(b, "feed with comments");
  await shot(b, "feed");

  // Alice's page, from her name on the post: her posts as her account gives them to bob.
  await post.getByRole("link", { name: "alice" }).click();
  await b.getByRole("heading", { name: "alice@family.test" }).waitFor();
  await b.locator(".post-text", { hasText: "Back from Lyon: photos soon" }).waitFor();
  await axe(b, "a person's page");
  await b.goto(NODE_B + "/#/feed");
  await b.getByRole("heading", { name: "Feed" }).waitFor();

  // Alice changes her post; bob's open page shows the new text, marked as changed.
  const mine = a.locator("li.post").first();
  await mine.getByRole("button", { name: "Edit" }).click();
  await mine.getByLabel("Edit").fill("Back from Lyon: photos tonight, at https://photos.example.test/lyon.");
  await mine.getByRole("button", { name: "Save" }).click();
  await b.locator("li.post", { hasText: "Back from Lyon: photos tonight" }).getByText("(edited)").waitFor();
  // Its web address is a link, with nothing after it taken for part of it.
  const link = b.getByRole("link", { name: "https://photos.example.test/lyon" });
  assert.equal(await link.getAttribute("href"), "https://photos.example.test/lyon");
  assert.equal(await link.getAttribute("rel"), "nofollow noopener noreferrer");
  step("edit_seen");

  // A post for a sphere (both are in "Family"), showing a photo of the sphere: the audience
  // is kept with the draft; bob's page says which sphere it is for, shows the photo's
  // thumbnail and opens it in the viewer.
  await a.getByLabel("What's new?").fill("Only for the **family**");
  await a.getByLabel("For").selectOption("sphere:Family");
  await a.reload();
  // (The spheres come from the node after the page draws: the choice is put back then.)
  await a.waitForFunction(() => /** @type {HTMLSelectElement} */ (document.getElementById("post-to")).value === "sphere:Family");
  await a.getByLabel("fourviere.png").check();
  await a.getByRole("button", { name: "Post", exact: true }).click();
  const family = b.locator("li.post", { hasText: "Only for the family" });
  await family.getByText("the sphere Family").waitFor();
  // Its little markup is read, as elements.
  await family.locator(".post-text strong", { hasText: "family" }).waitFor();
  const thumb = family.locator(".post-media img");
  await thumb.waitFor();
  await b.waitForFunction((img) => img.complete && img.naturalWidth > 0, await thumb.elementHandle());
  await family.getByRole("button", { name: /fourviere\.png/ }).click();
  await b.locator("#viewer-title", { hasText: "fourviere.png" }).waitFor();
  await b.waitForFunction(() => { const i = document.querySelector("#viewer-body img"); return i && i.complete && i.naturalWidth === 16; });
  await axe(b, "the viewer over the feed");
  await b.keyboard.press("Escape");
  step("sphere_seen");

  // The sphere's album, from its page: the photos one by one, under the day each was taken
  // (EXIF: 12 July 2025 and 24 December 2024), newest first; the viewer goes to the next one
  // with the arrow key and back with a finger's swipe.
  await b.goto(NODE_B + "/#/s/Family");
  await b.getByRole("link", { name: "Photos and videos, by day" }).click();
  await b.getByRole("heading", { name: "Family: photos and videos" }).waitFor();
  // Alice posts while bob looks at the album: his header counts it (and his tab's title).
  await a.getByLabel("What's new?").fill("Dinner at 8");
  await a.getByLabel("For").selectOption("contacts");
  await a.getByRole("button", { name: "Post", exact: true }).click();
  await b.locator(".count-badge", { hasText: "1" }).waitFor();
  assert.equal(await b.title(), "(1) spheres");
  await b.getByRole("heading", { name: "Saturday, July 12, 2025" }).waitFor();
  const headings = await b.locator(".album h2").allInnerTexts();
  assert.deepEqual(headings.slice(1), ["Saturday, July 12, 2025", "Tuesday, December 24, 2024"], headings.join(" | "));
  // Every photo's own thumbnail comes (the node makes a few at a time; the others wait).
  await b.waitForFunction(() => {
    const imgs = [...document.querySelectorAll(".album img")];
    return imgs.length === 3 && imgs.every((i) => /** @type {HTMLImageElement} */ (i).complete && /** @type {HTMLImageElement} */ (i).naturalWidth > 0);
  });
  await b.locator("section", { hasText: "July 12, 2025" }).getByRole("button", { name: "IMG_0001.png" }).click();
  await b.locator("#viewer-title", { hasText: "IMG_0001.png" }).waitFor();
  await b.keyboard.press("ArrowRight");
  await b.locator("#viewer-title", { hasText: "IMG_0002.png" }).waitFor();
  await b.locator("#viewer").evaluate((dialog) => {
    const at = (type, x) => dialog.dispatchEvent(new PointerEvent(type, { pointerType: "touch", clientX: x, bubbles: true }));
    at("pointerdown", 100);
    at("pointerup", 260);
  });
  await b.locator("#viewer-title", { hasText: "IMG_0001.png" }).waitFor();
  await b.waitForFunction(() => { const i = document.querySelector("#viewer-body img"); return i && i.complete && i.naturalWidth === 16; });
  await b.keyboard.press("Escape");
  await axe(b, "the album");
  await shot(b, "album");
  await b.goto(NODE_B + "/#/feed");
  await b.getByRole("heading", { name: "Feed" }).waitFor();
  // Seen: the count goes.
  await b.locator(".count-badge").waitFor({ state: "hidden" });
  assert.equal(await b.title(), "spheres");
  step("album_seen");

  // Phone width: nothing wider than the screen.
  await b.setViewportSize({ width: 360, height: 740 });
  const overflow = await b.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the feed is ${overflow}px wider than a phone`);
  await shot(b, "feed-phone");

  // French.
  await a.getByLabel("Language").selectOption("fr");
  await a.getByRole("heading", { name: "Fil" }).waitFor();
  await a.getByRole("button", { name: "1 commentaire" }).waitFor();

  // A public post: its page opens in a browser with no session, and runs no script.
  await a.getByLabel("Quoi de neuf ?").fill("For the whole web <script>alert(1)</script>");
  await a.getByLabel("Pour").selectOption("public");
  await a.getByRole("button", { name: "Publier", exact: true }).click();
  await a.locator(".post-text", { hasText: "For the whole web" }).waitFor();
  const { public_pages } = await (await nodeApi(NODE_A, "/api/status")).json();
  const visitor = await newPage();
  let dialogs = 0;
  visitor.on("dialog", (d) => { dialogs++; d.dismiss(); });
  await visitor.goto(public_pages);
  await visitor.getByText("For the whole web <script>alert(1)</script>").waitFor();
  assert.equal(await visitor.getByText("Back from Lyon").count(), 0, "only public posts");
  await axe(visitor, "public page");
  await shot(visitor, "public-page");
  assert.equal(dialogs, 0);
  // Settings (in French): everything exported as one download, then imported again into the
  // same account; the page says what was done.
  await a.goto(NODE_A + "/#/settings");
  const [download] = await Promise.all([a.waitForEvent("download"), a.getByRole("link", { name: /Tout exporter/ }).click()]);
  assert.match(download.suggestedFilename(), /^spheres-alice-\d{4}-\d{2}-\d{2}\.tar$/);
  const archive = await download.path();
  assert.ok(fs.statSync(archive).size > 10_000, "the archive holds the photos");
  await a.getByLabel("Importer un export (de ce compte ou d'un autre)").setInputFiles(archive);
  await a.getByRole("button", { name: "Importer", exact: true }).click();
  // (The photos were shared from outside the sphere's folder: they come back into it.)
  await a.locator(".report li", { hasText: "3 fichiers remis" }).waitFor();
  await axe(a, "settings with an import's report");
  step("data_moved");
  assert.deepEqual(blocked, [], "the pages' security policy blocked something they do");
  step("ok");
} catch (e) {
  for (const [who, p] of [["A", a], ["B", b]]) {
    if (!p) continue;
    console.log(JSON.stringify({ event: "state", who, url: p.url(),
      main: (await p.locator("main").innerText({ timeout: 1000 }).catch(() => "")).slice(0, 600) }));
    await shot(p, `feed-failure-${who}`).catch(() => {});
  }
  throw e;
} finally {
  clearTimeout(timer);
  await browser.close();
}
