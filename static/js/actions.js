// What the train bar's and the panels' buttons ask of the server (start a pair, stop runs), and how
// the answers land in the store. No DOM here.
import * as api from "./api.js";
import { SLOTS } from "./store.js";

/** Starts both panels' configs, as the server validated them, in this mode. */
export async function train(store, mode) {
  if (!store.canTrain()) return;
  store.setStarting(true);
  try {
    const answer = await api.startRuns(mode, SLOTS.map((s) => store.checks[s].config));
    // usually runs_created has shown them already; the answer covers a socket that is down.
    // A new run starts in the first active status (queued).
    const status = store.contract.statuses.active[0];
    store.show(answer.runs.map((r, i) => ({ ...r, slot: i, status, error: null, info: {}, mode })));
  } catch (err) {
    refused(store, err);
  } finally {
    store.setStarting(false);
  }
}

/** A 400 names its fields ("models[1].lr", "models[0].layers[2]"): each goes under its panel's field or
 * on its layer row; anything else by Train. */
function refused(store, err) {
  const named = (key) => /^models\[(\d+)\]\.(\w+(?:\[\d+\])?)$/.exec(key ?? "");
  const match = named(err.field);
  if (!match || !SLOTS[match[1]]) {
    store.say(err.message);
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

/** Stops the runs shown in these slots that have not ended. */
export function stop(store, slots) {
  for (const slot of slots) {
    const run = store.runs[slot];
    if (!run || store.isEnded(run) || run.stopping) continue;
    store.stopping(slot, true);
    api.stopRun(run.id).then(
      (answer) => store.merge(answer), // "stopped" at once if its worker ended; the event may come later
      (err) => store.stopping(slot, false, err.message),
    );
  }
}
