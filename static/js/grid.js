// The grid of 16 test images of the shown runs' dataset (grey or RGB) with each run's answer by class
// name, right or wrong. Each run's answers cost one POST /api/predict ("images": all 16) per epoch it
// logs, and one more if it ends on an earlier epoch's weights (the best one kept); they are kept until
// then. A click on an image hands it, with both answers' probabilities, to onPick.
import * as api from "./api.js";
import { paintImage } from "./canvas.js";
import { $, el } from "./dom.js";
import { SLOTS } from "./store.js";

const COUNT = 16;
const WAIT_MS = 300; // an epoch's event and its run's status often come together: one refresh

/** "a 7" for a digit, the bare name otherwise ("Ankle boot", "cat"): for sentences like "test image 4, a 7". */
export const aClass = (name) => (/^\d$/.test(name) ? `a ${name}` : name);

/** onPick({index, image, label, classes, dataset, probs: {slot: probs | null}}, update) hears a clicked test
 * image, and again (update: true) whenever the answers change. */
export function mountGrid(store, { onPick = () => {} } = {}) {
  const grid = $("#grid");
  let samples = null; // {dataset, images, labels, classes, shape}
  const answers = {}; // slot -> {key, labels, probs}: the run's answers for the weights it has
  let timer = null, busy = false, again = false, picked = null;

  const ready = (run) => run && (run.epoch.length > 0 || run.status === "finished");
  // the side a slot's model takes: a folder's images come at its image_size (a built-in dataset has its own)
  const sideOf = (slot) => store.shapeOf(slot)?.[1] ?? null;
  // a run answers on its own dataset's images only, at its side
  const fits = (slot) => store.runs[slot] && store.datasetOf(slot) === samples?.dataset && sideOf(slot) === samples.side;
  // the weights a finished run ends with: its best epoch's, when that is not its last
  const kept = (run) => {
    const best = run.status === "finished" ? run.info.best_epoch : null;
    return best != null && best !== run.epoch.at(-1)?.epoch ? best : "";
  };
  // what a run's answers depend on: the images, the run, and the weights it has (one set per epoch;
  // a stopped run's last snapshot may be newer than its last epoch's)
  const keyOf = (run) => `${samples.dataset}@${samples.side}/${run.id}/${run.epoch.length}/${run.status === "stopped"}/${kept(run)}`;
  const nameOf = (slot, label) => store.classesOf(slot)?.[label] ?? samples.classes[label] ?? String(label);

  async function load(slot) {
    const dataset = store.datasetOf(slot), side = sideOf(slot);
    if (samples?.dataset === dataset && samples.side === side) return;
    const answer = await api.samples(dataset, COUNT, "test", side);
    samples = { dataset, side, ...answer };
    picked = null;
    grid.dataset.dataset = dataset;
    grid.dataset.words = String(answer.classes.some((n) => n.length > 2)); // names: one per line
    $("#grid-title").textContent = `${answer.images.length} test images of ${dataset}`;
    grid.replaceChildren(
      ...answer.images.map((image, i) => {
        const truth = answer.classes[answer.labels[i]];
        const canvas = el("canvas", { width: answer.shape[2], height: answer.shape[1] });
        paintImage(canvas, image);
        const button = el("button", { type: "button", class: "pick", "aria-label": `test image ${i + 1}, ${aClass(truth)}` }, canvas);
        button.addEventListener("click", () => {
          picked = i;
          pick(false);
        });
        const guesses = SLOTS.map((slot) => el("span", { class: "guess", "data-slot": slot }));
        const caption = el("figcaption", {}, el("span", { class: "truth", text: truth }), ...guesses);
        return el("figure", { class: "cell", "data-channels": String(answer.shape[0]) }, button, caption);
      }),
    );
  }

  /** The shown answers of a slot, or null: its run can answer and they are for the weights it has now. */
  const shownOf = (slot) => {
    const run = store.runs[slot];
    return fits(slot) && ready(run) && answers[slot]?.key === keyOf(run) ? answers[slot] : null;
  };

  /** Hands the picked image to onPick: at a click, or again (update) when the answers change. */
  function pick(update) {
    if (picked === null || !samples) return;
    const probs = Object.fromEntries(SLOTS.map((s) => [s, shownOf(s)?.probs[picked] ?? null]));
    const { dataset, classes } = samples;
    onPick({ index: picked, image: samples.images[picked], label: samples.labels[picked], classes, dataset, probs }, update);
  }

  function render() {
    const cells = grid.querySelectorAll(".cell");
    for (const slot of SLOTS) {
      const shown = shownOf(slot)?.labels ?? null;
      let right = 0;
      cells.forEach((cell, i) => {
        const span = $(`.guess[data-slot=${slot}]`, cell);
        span.classList.remove("right", "wrong");
        span.textContent = shown ? `${slot.toUpperCase()}: ${nameOf(slot, shown[i])}` : "";
        if (!shown) return;
        const ok = shown[i] === samples.labels[i];
        right += ok;
        span.classList.add(ok ? "right" : "wrong");
      });
      grid.dataset[`right${slot.toUpperCase()}`] = shown ? String(right) : "";
    }
    // a model of another dataset has no answers here: say why its guesses are missing
    const other = SLOTS.filter((s) => store.runs[s] && !fits(s));
    $("#grid-note").textContent = other
      .map((s) => `Model ${s.toUpperCase()} was trained on ${store.datasetOf(s)}, so it does not answer on these images.`)
      .join(" ");
    pick(true);
  }

  async function refresh() {
    if (!store.ready) return; // the shown runs are not known yet: their dataset may not be panel A's
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      // the images of the first run that can answer, else of the first shown, else of panel A as typed
      const shown = SLOTS.filter((s) => store.runs[s]);
      await load(shown.find((s) => ready(store.runs[s])) ?? shown[0] ?? "a");
      $("#grid-message").textContent = "";
      for (const slot of SLOTS) {
        const run = store.runs[slot];
        if (!fits(slot) || !ready(run) || answers[slot]?.key === keyOf(run)) continue;
        const key = keyOf(run);
        const answer = await api.predictImages(samples.images, [run.id]);
        const { labels, probs } = answer.predictions[0];
        answers[slot] = { key, labels, probs };
      }
      render();
    } catch (err) {
      if (samples) render();
      $("#grid-message").textContent = `Test images unavailable: ${err.message}`;
    } finally {
      busy = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, WAIT_MS);
  }

  store.subscribe(({ kind }) => {
    if (["ready", "reset", "epoch", "status"].includes(kind)) schedule();
    // with no run shown, the images follow panel A's dataset as typed
    else if (kind === "check" && !SLOTS.some((s) => store.runs[s])) schedule();
  });
  schedule();
}
