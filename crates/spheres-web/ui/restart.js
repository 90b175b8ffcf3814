// After signing in or taking an invitation link, the node starts again as the new account;
// the view that asked waits for it here.
import { needLogin } from "./api.js";
import { say } from "./dom.js";
import { expectRestart } from "./events.js";
import { t } from "./i18n.js";

/** Losing the event stream is expected from now on, until `life` ends or `expectRestart(false)`:
 *  set before the request that restarts the node, which may cut the stream before it answers. */
export function restartAhead(life) {
  expectRestart(true);
  life.add(() => expectRestart(false));
}

/** Asks `ready()` every second, for two minutes at most, while the view's scope `life` lasts,
 *  and stops at the first true. Errors on the way are the node restarting, except a login
 *  wall (from another device the restarted node asks for the password again). */
export async function waitForRestart(life, ready) {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    await life.sleep(1000);
    if (life.ended) return;
    try {
      if (await ready()) return;
    } catch (e) {
      if (e.login) { needLogin(); return; }
    }
  }
  if (!life.ended) say(t("joinSlow"));
}
