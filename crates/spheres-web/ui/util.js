// Small helpers shared by the views: sizes, URL parts, and the scope that holds what a
// mounted view must release when it goes.
import { number } from "./i18n.js";

/** Decimal units, as file managers show them; the number as the language writes it. */
export function size(bytes) {
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let v = bytes, u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  if (u === 0) return `${number(v, { useGrouping: false })} ${units[0]}`;
  const digits = v >= 100 ? 0 : 1;
  return `${number(v, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false })} ${units[u]}`;
}

export function enc(s) { return encodeURIComponent(s); }

/** What a mounted view holds: a signal for its requests (AbortController), its timers and
 *  anything else it registers with add() (event subscriptions, a viewer...). end() aborts
 *  the requests, clears the timers and runs the rest, once. */
export function scope() {
  const controller = new AbortController();
  const cleanups = new Set();
  const asked = new Set(); // functions soon() will run
  const life = {
    signal: controller.signal,
    get ended() { return controller.signal.aborted; },
    /** Runs `fn` at end() (at once if the scope has ended); returns it. */
    add(fn) {
      if (life.ended) fn();
      else cleanups.add(fn);
      return fn;
    },
    /** setTimeout that end() cancels (nothing, once ended). */
    later(fn, ms) {
      if (life.ended) return;
      const cancel = () => { clearTimeout(id); cleanups.delete(cancel); };
      const id = setTimeout(() => { cancel(); fn(); }, ms);
      cleanups.add(cancel);
    },
    /** Runs `fn` once, shortly after, however many times it is asked for in a burst (each
     *  function on its own). */
    soon(fn) {
      if (asked.has(fn)) return;
      asked.add(fn);
      life.later(() => { asked.delete(fn); fn(); }, 150);
    },
    /** Resolves after `ms`, or at once when the scope ends (check `ended` after). */
    sleep(ms) {
      if (life.ended) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => { clearTimeout(id); cleanups.delete(done); resolve(); };
        const id = setTimeout(done, ms);
        cleanups.add(done);
      });
    },
    end() {
      if (controller.signal.aborted) return;
      controller.abort();
      const fns = [...cleanups];
      cleanups.clear();
      for (const fn of fns) {
        try { fn(); } catch (e) { console.error(e); }
      }
    },
  };
  return life;
}
