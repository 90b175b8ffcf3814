// Hash routes to views. A view is a module whose mount(el, params) draws into `el` and
// answers an unmount() that releases everything the view holds (requests, timers, event
// subscriptions); the router calls it before it mounts the next view. The previous view's
// elements stay until the next one draws, as before: no blank flash while it loads.

let root = null;
let routes = [];
let fallback = null;
let onError = (e) => console.error(e);
let unmount = null;

/** Starts routing into `el`: `table` is a list of [RegExp, view, params(match)?], tried in
 *  order on location.hash; `home` is the view when none matches. `errors` gets what a route
 *  throws. */
export function start(el, table, home, errors) {
  root = el;
  routes = table;
  fallback = home;
  onError = errors;
  window.addEventListener("hashchange", route);
  route();
}

/** Mounts the view of the current hash (again, if it is the one shown). */
export function route() {
  try {
    for (const [pattern, view, params] of routes) {
      const m = location.hash.match(pattern);
      if (m) { show(view, params ? params(m) : {}); return; }
    }
    show(fallback, {});
  } catch (e) { onError(e); }
}

/** Mounts `view` whatever the hash says (the login screen), after unmounting the current one. */
export function show(view, params = {}) {
  const previous = unmount;
  unmount = null;
  if (previous) previous();
  unmount = view.mount(root, params);
}

/** Goes to `hash`; if the page is there already, mounts its view again. */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}
