// The spheres web interface: native modules, no framework, no build step, no CDN. It talks
// to the node's JSON API on the same origin and listens to /api/events for live changes.
// This entry point loads the language, routes addresses to views and opens the event stream.
//
// Served at /app.js, while the modules are served under /ui/ (spheres-web's UI_FILES):
// hence absolute paths here, and relative ones between the modules.
import { failLoad, onLoginNeeded } from "/ui/api.js";
import { watchCalls } from "/ui/call.js";
import { watchSphereCalls } from "/ui/groupcall.js";
import { checkConnection, forgetConnection, redrawConnection, watchConnection } from "/ui/connection.js";
import { say } from "/ui/dom.js";
import { connect, dispatch, restartExpected } from "/ui/events.js";
import { preferredLanguage, setLanguage, t, translatePage } from "/ui/i18n.js";
import { route, show, start } from "/ui/router.js";
import { redrawUnread, watchFeed } from "/ui/unread.js";
import * as album from "/ui/views/album.js";
import * as chat from "/ui/views/chat.js";
import * as chats from "/ui/views/chats.js";
import * as feed from "/ui/views/feed.js";
import * as home from "/ui/views/home.js";
import * as join from "/ui/views/join.js";
import * as login from "/ui/views/login.js";
import * as settings from "/ui/views/settings.js";
import * as signin from "/ui/views/signin.js";
import * as sphere from "/ui/views/sphere.js";

// Addresses: [pattern on location.hash, view, its params]; home when none matches.
const routes = [
  [/^#\/s\/(.+)\/photos$/, album, (m) => ({ name: decodeURIComponent(m[1]) })],
  [/^#\/s\/(.+)$/, sphere, (m) => ({ name: decodeURIComponent(m[1]) })],
  [/^#\/settings$/, settings],
  [/^#\/chats$/, chats],
  [/^#\/feed$/, feed],
  [/^#\/people\/(.+)$/, feed, (m) => ({ jid: decodeURIComponent(m[1]) })],
  [/^#\/signin$/, signin],
  [/^#\/join/, join, () => ({ link: new URLSearchParams(location.hash.split("?")[1] || "").get("link") })],
  [/^#\/chat\/(.*)$/, chat, (m) => ({ jid: decodeURIComponent(m[1]) })],
];


try {
  await setLanguage(preferredLanguage());
} catch (e) {
  console.error(e);
  await setLanguage("en");
}

document.getElementById("lang").addEventListener("change", async (ev) => {
  const choice = /** @type {HTMLSelectElement} */ (ev.target).value;
  try { await setLanguage(choice); } catch (e) { console.error(e); return; }
  localStorage.setItem("lang", choice);
  translatePage();
  redrawConnection();
  redrawUnread();
  route();
});

// The node wants a login (another device, or a session that ended): the login view, whatever
// the address; once logged in, the address's own view.
onLoginNeeded(() => show(login));

translatePage();
watchConnection(document.getElementById("xmpp"));
watchFeed(/** @type {HTMLElement} */ (document.querySelector('header a[href="#/feed"]')));
watchCalls();
watchSphereCalls();
start(document.getElementById("app"), routes, home, failLoad);
// The node went out of reach (not on purpose): what failed meanwhile ("Failed to fetch") is
// said over the notice, and goes with it once the node is back.
let lost = false;
connect({
  opened() {
    // Back after a loss: the views refresh what they show, as after a lag.
    if (lost) {
      lost = false;
      say("");
      dispatch({ type: "resync" });
    }
    checkConnection();
  },
  lost() {
    forgetConnection();
    // While the node restarts on purpose, the view that asked for it says what happens.
    if (!restartExpected()) {
      lost = true;
      say(t("reconnecting"));
    }
  },
});
