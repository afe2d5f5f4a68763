// The train bar: mode, Train and Stop, the sentence under them, and "Analyse A vs B" once both
// shown runs have ended and both analyses are stored. Redraws from the store.
import * as actions from "./actions.js";
import { $ } from "./dom.js";
import { SLOTS } from "./store.js";

/** Why Train is off, or what the server said; "" when there is nothing to say. */
function sentence(store) {
  if (store.notice) return store.notice;
  const bad = store.invalid();
  if (bad.length) {
    const fields = bad.reduce((n, s) => n + Object.keys(store.checks[s].errors ?? {}).length, 0);
    const who = bad.length === 2 ? "Models A and B have" : `Model ${bad[0].toUpperCase()} has`;
    const what = fields > 1 ? "invalid values; fix the marked fields" : "an invalid value; fix the marked field";
    return `${who} ${what} first.`;
  }
  const offline = SLOTS.find((s) => store.checks[s].state === "offline");
  return offline ? store.checks[offline].message : "";
}

function renderAnalysisLink(store) {
  const link = $("#analyse");
  const { a, b } = store.runs;
  const ended = a && b && store.isEnded(a) && store.isEnded(b);
  const ready = ended && a.analysis === "ready" && b.analysis === "ready";
  link.hidden = !ready;
  if (ready) link.href = `/analysis?a=${encodeURIComponent(a.id)}&b=${encodeURIComponent(b.id)}`;
  else link.removeAttribute("href");
  let text = "";
  if (ended && !ready) {
    const failed = SLOTS.filter((s) => store.runs[s].analysis === "failed").map((s) => s.toUpperCase());
    // a finished run is always analysed; a stopped one only if it had saved weights
    const waiting = SLOTS.some((s) => {
      const run = store.runs[s];
      return run.analysis === "pending" || (run.status === "finished" && !run.analysis);
    });
    if (failed.length) text = `The analysis of ${failed.join(" and ")} failed.`;
    else if (waiting) text = "Analysing both runs on the full test set…";
  }
  $("#analyse-note").textContent = text;
}

function render(store) {
  const active = store.active();
  const train = $("#train");
  train.disabled = !store.canTrain();
  train.title = active.length ? "Stop the current runs first" : "";
  $("#stop").disabled = active.length === 0;
  const text = sentence(store);
  if ($("#train-message").textContent !== text) $("#train-message").textContent = text;
  renderAnalysisLink(store);
}

export function mountTrainBar(store) {
  const mode = $("#mode");
  $("#train").addEventListener("click", () => actions.train(store, mode.value));
  $("#stop").addEventListener("click", () => actions.stop(store, SLOTS));
  store.subscribe((change) => {
    if (change.kind === "batch" || change.kind === "epoch") return; // nothing here depends on metrics
    // a reload shows how the shown group was started
    if (change.kind === "reset" && [...mode.options].some((o) => o.value === store.mode)) mode.value = store.mode;
    render(store);
  });
  render(store);
}
