// Asks the server about a panel as typed (POST /api/models/check), debounced, and puts its answer
// in the store. The page checks nothing itself: the server's rules are the only ones.
import * as api from "./api.js";

const DEBOUNCE_MS = 250;

/** Returns check(slot, values, now = false): values are the panel's fields as typed (strings, and the
 * nested augment and layers as objects). A valid answer keeps everything the server said: the normalised
 * config, params, macs, its per-layer rows, input_shape, classes and lr_plan. */
export function createChecker(store) {
  const timers = {};
  const edits = { a: 0, b: 0 }; // per slot: how many times it was edited; an answer counts only for the last

  return function check(slot, values, now = false) {
    const edit = ++edits[slot];
    store.checking(slot);
    clearTimeout(timers[slot]);
    timers[slot] = setTimeout(async () => {
      let result;
      try {
        const answer = await api.checkModel(values, slot);
        const { config, params, macs, layers, input_shape: inputShape, classes, lr_plan: lrPlan } = answer;
        result = { state: "valid", config, params, macs, layers, inputShape, classes, lrPlan };
      } catch (err) {
        if (err.status === 400) result = { state: "invalid", errors: err.errors ?? { [err.field]: err.message } };
        else result = { state: "offline", message: err.message };
      }
      if (edit === edits[slot]) store.checked(slot, result); // else stale: the panel changed since
    }, now ? 0 : DEBOUNCE_MS);
  };
}
