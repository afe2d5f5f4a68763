// Catching up: when events arrive for runs the page never heard of (their runs_created was missed,
// say over a reconnect), list the runs once and adopt the newest group into the store.
import * as api from "./api.js";
import { groupOf } from "./store.js";

const WAIT_MS = 150; // events of one missed group come in bursts: one listing for the burst

/** The group to show: the newest run's, in slot order (A first). */
export function newestGroup(runs) {
  if (!runs.length) return [];
  const newest = runs.reduce((a, b) => (b.created > a.created ? b : a));
  return runs.filter((r) => groupOf(r) === groupOf(newest)).sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0));
}

export function mountSync(store) {
  let timer = null;
  store.subscribe((change) => {
    if (change.kind === "unknown" && !timer) timer = setTimeout(sync, WAIT_MS);
  });

  async function sync() {
    let listed = [];
    let failed = false;
    try {
      listed = (await api.listRuns()).runs;
      const group = newestGroup(listed);
      if (group.length && !store.shows(group)) store.adopt(await Promise.all(group.map((r) => api.getRun(r.id))));
    } catch (err) {
      store.say(err.message);
      failed = true;
    }
    timer = null;
    // a listed run that is not the newest group stays off the page; its events are dropped from now on
    store.know(listed);
    if (!failed && store.buffered.size) timer = setTimeout(sync, WAIT_MS); // runs newer than the listing
  }
}
