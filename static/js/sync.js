// Catching up: when events arrive for runs the page never heard of (their runs_created was missed,
// say over a reconnect), list the runs once and adopt the newest group into the store. And the shown
// group's verdict, asked for once its runs have ended, and again while the server is still analysing.
import * as api from "./api.js";
import { groupOf } from "./store.js";

const WAIT_MS = 150; // events of one missed group come in bursts: one listing for the burst
const VERDICT_POLL_MS = 3000; // a 409 (runs still training or being analysed): ask again this much later

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

/** Asks GET /api/groups/<group>/verdict for the shown pair once every seed has ended and every finished
 * one's analysis is stored (analysis_ready says so); should the server still answer 409 (training or
 * analysing), again every few seconds. */
export function mountVerdict(store) {
  let asking = null; // the group asked about, until its answer is in
  store.subscribe((change) => {
    if (["batch", "epoch"].includes(change.kind) || ["batch", "epoch"].includes(change.event)) return;
    if (!store.group || asking === store.group || store.verdict?.group === store.group || !store.settled()) return;
    ask(store.group);
  });

  async function ask(group) {
    asking = group;
    try {
      const data = await api.call("GET", `/api/groups/${encodeURIComponent(group)}/verdict`);
      store.setVerdict(group, { state: "ready", data });
    } catch (err) {
      if (err.status === 409 && store.group === group) {
        setTimeout(() => {
          if (store.group === group) ask(group);
          else if (asking === group) asking = null;
        }, VERDICT_POLL_MS);
        return;
      }
      store.setVerdict(group, { state: "failed", message: err.message });
    }
    if (asking === group) asking = null;
  }
}
