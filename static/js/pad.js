// The drawing: the pad, the 28x28 image the models receive, each shown run's probabilities and the
// verdict. Asks POST /api/predict with the one image ("image") while drawing, ~8 times a second at most.
import * as api from "./api.js";
import { canvasToMnist, DrawPad, paintImage } from "./canvas.js";
import { className, isFashion } from "./classes.js";
import { $, el } from "./dom.js";
import { SLOTS } from "./store.js";

const MIN_GAP_MS = 120;
const RETRY_MS = 2000; // a 409: the run's first weight snapshot is a second or two away

function buildProbs(slot) {
  const box = $(`#probs-${slot}`);
  box.append(el("p", { class: "probs-title", text: `Model ${slot.toUpperCase()}` }));
  for (let d = 0; d < 10; d++) {
    const parts = [["digit", String(d)], ["bar"], ["value"], ["mark"]].map(([c, text = ""]) => el("span", { class: c, text }));
    parts[1].append(el("i"));
    parts[3].setAttribute("aria-hidden", "true");
    box.append(el("div", { class: "prob-row", "data-class": String(d) }, ...parts));
  }
  box.append(el("p", { class: "probs-note" }));
}

function showProbs(slot, probs, message = "") {
  const box = $(`#probs-${slot}`);
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  box.querySelectorAll(".prob-row").forEach((row, d) => {
    const p = probs ? probs[d] : 0;
    $("i", row).style.width = `${(p * 100).toFixed(1)}%`;
    $(".value", row).textContent = probs ? `${(p * 100).toFixed(1)}%` : "";
    row.classList.toggle("best", d === best);
  });
  $(".probs-note", box).textContent = message;
  if (probs) box.dataset.label = String(best);
  else delete box.dataset.label;
}

export function mountPad(store) {
  const datasetOf = (slot) => store.runs[slot]?.config?.dataset ?? store.defaults.dataset; // an empty slot: the default's classes
  const name = (slot, label) => className(datasetOf(slot), label);
  const retryAt = {}; // run id -> when its weights may be there
  const state = { drawn: null, busy: false, again: false, last: 0 }; // drawn: 28x28 rows, or null

  /** Runs whose weights the server can use: it has reported training, or an epoch. */
  const predictable = () =>
    SLOTS.filter((s) => {
      const run = store.runs[s];
      if (!run || performance.now() < (retryAt[run.id] ?? 0)) return false;
      return run.epoch.length > 0 || (run.batch.length > 0 && run.status !== "queued");
    });

  function showVerdict(labels) {
    const verdict = $("#verdict");
    for (const row of document.querySelectorAll(".prob-row")) {
      row.classList.remove("disagree");
      $(".mark", row).textContent = "";
    }
    verdict.classList.remove("disagree");
    const { a, b } = labels;
    if (a === undefined || b === undefined) {
      const slot = a !== undefined ? "a" : b !== undefined ? "b" : null;
      if (slot) verdict.textContent = `Model ${slot.toUpperCase()} reads ${name(slot, labels[slot])}.`;
      return;
    }
    if (name("a", a) === name("b", b)) {
      verdict.textContent = `Both read ${name("a", a)}.`;
      return;
    }
    verdict.textContent = `They disagree: A reads ${name("a", a)}, B reads ${name("b", b)}.`;
    verdict.classList.add("disagree");
    for (const [slot, d] of [["a", a], ["b", b]]) {
      const row = $(`#probs-${slot}`).querySelectorAll(".prob-row")[d];
      row.classList.add("disagree");
      $(".mark", row).textContent = "≠";
    }
  }

  function request(now = false) {
    if (!state.drawn) return;
    if (state.busy) {
      state.again = true;
      return;
    }
    state.busy = true;
    setTimeout(ask, now ? 0 : Math.max(0, MIN_GAP_MS - (performance.now() - state.last)));
  }

  async function ask() {
    state.last = performance.now();
    const image = state.drawn;
    const slots = predictable();
    const runs = slots.map((s) => store.runs[s]);
    if (!SLOTS.some((s) => store.runs[s]?.batch.length)) {
      $("#verdict").textContent = "Train a model first; then its answer shows here.";
    }
    // one request per run, so a run without weights yet does not hold up the other's answer
    const answers = await Promise.all(runs.map((r) => api.predict(image, [r.id]).then((a) => a.predictions[0], (e) => e)));
    const labels = {};
    slots.forEach((slot, i) => {
      if (!state.drawn) return; // cleared meanwhile
      const answer = answers[i];
      if (answer instanceof Error) {
        showProbs(slot, null, answer.message);
        if (answer.status === 409) {
          retryAt[runs[i].id] = performance.now() + RETRY_MS;
          setTimeout(() => request(true), RETRY_MS + 100);
        }
      } else {
        showProbs(slot, answer.probs);
        labels[slot] = answer.label;
      }
    });
    if (state.drawn && slots.length) showVerdict(labels);
    state.busy = false;
    if (state.again) {
      state.again = false;
      request();
    }
  }

  /** Names the rows after the shown runs' classes, and says when they know clothing, not digits. */
  function renderClasses() {
    for (const slot of SLOTS) {
      const box = $(`#probs-${slot}`), dataset = datasetOf(slot);
      box.dataset.dataset = dataset;
      box.querySelectorAll(".prob-row").forEach((row, d) => ($(".digit", row).textContent = className(dataset, d)));
    }
    const fashion = SLOTS.filter((s) => store.runs[s] && isFashion(datasetOf(s)));
    const note = $("#draw-note");
    note.hidden = fashion.length === 0;
    const who = fashion.length === 2 ? "Both models were" : `Model ${fashion[0]?.toUpperCase()} was`;
    const reads = fashion.length === 2 ? "they read" : "it reads";
    note.textContent = fashion.length
      ? `${who} trained on clothing (Fashion-MNIST), so ${reads} a drawing as one of ten kinds of clothing: try a trouser, a bag or a shoe.`
      : "";
  }

  function clear() {
    pad.clear();
    state.drawn = null;
    paintImage($("#preview"), Array.from({ length: 28 }, () => new Array(28).fill(0)));
    for (const slot of SLOTS) showProbs(slot, null);
    showVerdict({});
    $("#verdict").textContent = "Draw a digit to see both answers.";
  }

  for (const slot of SLOTS) buildProbs(slot);
  const pad = new DrawPad($("#pad"), (final) => {
    state.drawn = pad.empty ? null : canvasToMnist(pad.canvas);
    if (state.drawn) paintImage($("#preview"), state.drawn);
    request(final);
  });
  $("#clear").addEventListener("click", clear);
  clear();
  store.subscribe(({ kind }) => {
    if (kind === "reset") renderClasses();
    // a drawing on the pad is read again by the newly shown runs, and after every epoch
    if (kind === "reset" || kind === "epoch") request();
  });
  renderClasses();
}
