// What the train bar's and the panels' buttons ask of the server (start a pair, with repeats over
// seeds; stop runs), and how the answers land in the store. No DOM here.
import * as api from "./api.js";
import { SLOTS } from "./store.js";

/** Starts both panels' configs, as the server validated them, in this mode, each with `repeats` seeds (the
 * number as typed: the server says which it takes). */
export async function train(store, mode, repeats = 1) {
  if (!store.canTrain()) return;
  store.setStarting(true);
  try {
    const models = SLOTS.map((s) => store.checks[s].config);
    const answer = await api.call("POST", "/api/runs", { mode, models, repeats });
    // usually runs_created has shown them already; the answer covers a socket that is down.
    // A new run starts in the first active status (queued); the answer lists the seeds in order.
    const status = store.contract.statuses.active[0];
    store.show(answer.runs.map((r, i) => ({ ...r, slot: r.slot ?? i, status, error: null, info: {}, mode })));
  } catch (err) {
    refused(store, err);
  } finally {
    store.setStarting(false);
  }
}

/** A 400 names its fields ("models[1].lr", "models[0].layers[2]"): each goes under its panel's field or
 * on its layer row; "repeats" marks the train bar's box; anything else goes by Train. */
function refused(store, err) {
  const named = (key) => /^models\[(\d+)\]\.(\w+(?:\[\d+\])?)$/.exec(key ?? "");
  const match = named(err.field);
  if (!match || !SLOTS[match[1]]) {
    store.say(err.message, err.field === "repeats" ? "repeats" : null);
    return;
  }
  const errors = {};
  const rules = err.errors ?? { [err.field]: err.message.replace(`${err.field}: `, "") };
  for (const [key, rule] of Object.entries(rules)) {
    const m = named(key);
    if (m && SLOTS[m[1]]) (errors[SLOTS[m[1]]] ??= {})[m[2]] = rule;
  }
  const slot = SLOTS[match[1]], field = match[2];
  store.refused(errors, `The server refused model ${slot.toUpperCase()}'s ${field}: ${errors[slot][field]}`);
}

/** Stops every seed shown in these slots that has not ended: the queued ones first, so that no later round
 * starts while a training one is being stopped. */
export function stop(store, slots) {
  const runs = slots.flatMap((slot) => store.seeds[slot]).filter((run) => !store.isEnded(run) && !run.stopping);
  runs.sort((x, y) => (x.status === "queued" ? 0 : 1) - (y.status === "queued" ? 0 : 1));
  for (const run of runs) {
    store.stopping(run, true);
    api.stopRun(run.id).then(
      (answer) => store.merge(answer), // "stopped" at once if its worker ended; the event may come later
      (err) => store.stopping(run, false, err.message),
    );
  }
}
