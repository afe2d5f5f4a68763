// View of the verdict, saying which question it answers. One seed each: "is trained model A better than
// trained model B on this test set?", by McNemar's exact test on their paired test-set predictions (the
// server's p-value and sentence), with what each model costs. A pair from a group trained with repeats:
// "is config A better than config B?", the group's verdict over its seeds. Runs on different data sets:
// no verdict, their accuracies are on different test sets.

import { $ } from "./dom.js";
import { int, pct, seconds } from "./format.js";
import { showErrors } from "./analysis-parts.js";
import { watch } from "./analysis-store.js";

/** "2.5× the parameters (…)", "3.0× less training time (…)" or "about the same latency (…)". */
function cost(what, mine, theirs, format, less) {
  const r = mine / theirs;
  const detail = ` (${format(mine)} vs ${format(theirs)})`;
  if (!Number.isFinite(r) || Math.abs(r - 1) < 0.02) return `about the same ${what}${detail}`;
  const times = (x) => `${x >= 10 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1)}×`;
  return r > 1 ? `${times(r)} the ${what}${detail}` : `${times(1 / r)} ${less} ${what}${detail}`;
}

export function mountVerdict(store) {
  watch(store, (s) => [s.pair, s.compare, s.group?.verdict, s.ready === "empty"], (state) => {
    const line = $("#verdict-text");
    line.dataset.winner = "";
    line.dataset.question = "";
    line.removeAttribute("title");
    if (state.ready === "empty") line.textContent = "Choose two runs to compare.";
    else if (state.pair) showVerdict(line, state);
  });
}

function showVerdict(line, state) {
  const { pair, ids, runs, group } = state;
  const { a, b } = pair.results;
  if (!a || !b) return showErrors(line, ids, pair.errors, "No verdict yet. ");
  const [da, db] = [runs?.get(ids.a)?.config.dataset, runs?.get(ids.b)?.config.dataset];
  if (da && db && da !== db) {
    line.textContent = `No verdict: A was trained on ${da} and B on ${db}, so their accuracies are on different test sets and cannot be compared.`;
    return;
  }
  if (group) showConfigs(line, group);
  else showModels(line, state);
}

/** A pair of a group trained with repeats: the config-level answer over its seeds, not one seed's. */
function showConfigs(line, { verdict }) {
  line.dataset.question = "configs";
  const ask = "Is config A better than config B? ";
  if (!verdict) line.textContent = `${ask}Loading the group's verdict…`;
  else if (verdict.waiting) {
    const n = verdict.waiting;
    line.textContent = `${ask}The verdict over the group's seeds comes once every seed has ended and been analysed (waiting for ${n} run${n === 1 ? "" : "s"}).`;
  } else if (verdict.error) line.textContent = `No verdict for the group: ${verdict.error.message}`;
  else {
    const v = verdict.value;
    line.textContent = `${ask}${v.sentence} Every seed, and each seed pair's McNemar test, is under Seeds below.`;
    if (v.config_level_significant) line.dataset.winner = v.difference.mean > 0 ? "a" : "b";
  }
}

/** One seed each: McNemar's exact test on the paired test-set predictions, then what each model costs. */
function showModels(line, { compare, pair }) {
  line.dataset.question = "models";
  if (!compare || compare.pending) {
    line.textContent = "Testing the two models on the paired test-set predictions…";
    return;
  }
  if (compare.error) {
    line.textContent = `No verdict: ${compare.error.message.replace(/^[\w.[\]]+: /, "")}`;
    line.title = `The server said: ${compare.error.message}`;
    return;
  }
  const { a, b } = pair.results, v = compare.value;
  const params = cost("parameters", a.params, b.params, int, "fewer");
  const time = cost("training time", a.train_seconds, b.train_seconds, seconds, "less");
  const latency = cost("latency", a.latency_ms, b.latency_ms, (ms) => `${ms.toFixed(2)} ms`, "less");
  line.textContent =
    `Is trained model A better than trained model B on this test set? ${v.sentence} (McNemar's exact test.) ` +
    `Test accuracy: A ${pct(a.accuracy)}, B ${pct(b.accuracy)}. Against B, A has ${params}, ${time} and ${latency} per image.`;
  line.dataset.winner = v.better ?? "";
}
