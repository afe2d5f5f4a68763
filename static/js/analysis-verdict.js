// View of the verdict: one sentence saying which run is more accurate and what that costs in
// parameters, training time and latency; or why there is no verdict yet.

import { $ } from "./dom.js";
import { int, pct, seconds } from "./format.js";
import { showErrors } from "./analysis-parts.js";
import { watch } from "./analysis-store.js";

/** "2.5× the parameters (…)", "3.0× less training time (…)" or "about the same latency (…)". */
function cost(what, winner, loser, format, less) {
  const r = winner / loser;
  const detail = ` (${format(winner)} vs ${format(loser)})`;
  if (!Number.isFinite(r) || Math.abs(r - 1) < 0.02) return `about the same ${what}${detail}`;
  const times = (x) => `${x >= 10 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1)}×`;
  return r > 1 ? `${times(r)} the ${what}${detail}` : `${times(1 / r)} ${less} ${what}${detail}`;
}

export function mountVerdict(store) {
  watch(store, (s) => [s.pair, s.ready === "empty"], (state) => {
    const line = $("#verdict-text");
    if (state.ready === "empty") line.textContent = "Choose two runs to compare.";
    else if (state.pair) showVerdict(line, state);
  });
}

function showVerdict(line, { pair, ids }) {
  const { a, b } = pair.results;
  if (!a || !b) {
    showErrors(line, ids, pair.errors, "No verdict yet. ");
    line.dataset.winner = "";
    return;
  }
  const diff = a.accuracy - b.accuracy;
  const tested = a.test_samples === b.test_samples ? a.test_samples : null;
  if (Math.abs(diff) < 1e-9) {
    line.textContent = `A and B are equally accurate (${pct(a.accuracy)}); ${cost("parameters", a.params, b.params, int, "fewer")} for A, and ${cost("training time", a.train_seconds, b.train_seconds, seconds, "less")}.`;
    line.dataset.winner = "tie";
    return;
  }
  const [w, l, W, L] = diff > 0 ? [a, b, "A", "B"] : [b, a, "B", "A"];
  const images = tested ? `, ${int(Math.round(Math.abs(diff) * tested))} more of the ${int(tested)} test images right` : "";
  const params = cost("parameters", w.params, l.params, int, "fewer");
  const time = cost("training time", w.train_seconds, l.train_seconds, seconds, "less");
  const latency = cost("latency", w.latency_ms, l.latency_ms, (v) => `${v.toFixed(2)} ms`, "less");
  line.textContent =
    `${W} is more accurate than ${L}: ${pct(w.accuracy)} vs ${pct(l.accuracy)} ` +
    `(+${(100 * Math.abs(diff)).toFixed(2)} points${images}), with ${params}, ${time} and ${latency} per image.`;
  line.dataset.winner = W.toLowerCase();
}
