// The grid of 16 test images with each shown run's answer, right or wrong. Each run's answers cost
// one POST /api/predict ("images": all 16) per epoch it logs, and are kept until its next epoch.
import * as api from "./api.js";
import { paintImage } from "./canvas.js";
import { aClass, className } from "./classes.js";
import { $, el } from "./dom.js";
import { SLOTS } from "./store.js";

const COUNT = 16;
const WAIT_MS = 300; // an epoch's event and its run's status often come together: one refresh

export function mountGrid(store) {
  const grid = $("#grid");
  let samples = null; // {dataset, images, labels}
  const answers = {}; // slot -> {key, labels}: the run's answers for the weights of its last epoch
  let timer = null, busy = false, again = false;

  const ready = (run) => run && (run.epoch.length > 0 || run.status === "finished");
  // what a run's answers depend on: the images, the run, and the weights it has (one set per epoch;
  // a stopped run's last snapshot may be newer than its last epoch's)
  const keyOf = (run) => `${samples.dataset}/${run.id}/${run.epoch.length}/${run.status === "stopped"}`;

  async function load(dataset) {
    if (samples?.dataset === dataset) return;
    const answer = await api.samples(dataset, COUNT);
    samples = { dataset, images: answer.images, labels: answer.labels };
    grid.dataset.dataset = dataset;
    grid.replaceChildren(
      ...answer.images.map((image, i) => {
        const canvas = el("canvas", { width: 28, height: 28, "aria-label": `test image ${i + 1}, ${aClass(dataset, answer.labels[i])}` });
        paintImage(canvas, image);
        const guesses = SLOTS.map((slot) => el("span", { class: "guess", "data-slot": slot }));
        const caption = el("figcaption", {}, el("span", { class: "truth", text: className(dataset, answer.labels[i]) }), ...guesses);
        return el("figure", { class: "cell" }, canvas, caption);
      }),
    );
  }

  function render() {
    const cells = grid.querySelectorAll(".cell");
    for (const slot of SLOTS) {
      const run = store.runs[slot];
      const shown = ready(run) && answers[slot]?.key === keyOf(run) ? answers[slot].labels : null;
      let right = 0;
      cells.forEach((cell, i) => {
        const span = $(`.guess[data-slot=${slot}]`, cell);
        span.classList.remove("right", "wrong");
        span.textContent = shown ? `${slot.toUpperCase()}: ${className(run.config.dataset, shown[i])}` : "";
        if (!shown) return;
        const ok = shown[i] === samples.labels[i];
        right += ok;
        span.classList.add(ok ? "right" : "wrong");
      });
      grid.dataset[`right${slot.toUpperCase()}`] = shown ? String(right) : "";
    }
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      // the images of the first run that can answer, else of the first shown; a run that never trained says nothing
      const shown = SLOTS.map((s) => store.runs[s]);
      await load((shown.find(ready) ?? shown.find(Boolean))?.config.dataset ?? store.defaults.dataset);
      $("#grid-message").textContent = "";
      for (const slot of SLOTS) {
        const run = store.runs[slot];
        if (!ready(run) || answers[slot]?.key === keyOf(run)) continue;
        const key = keyOf(run);
        const answer = await api.predictImages(samples.images, [run.id]);
        answers[slot] = { key, labels: answer.predictions[0].labels };
      }
      render();
    } catch (err) {
      render();
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
    if (kind === "reset" || kind === "epoch" || kind === "status") schedule();
  });
  schedule();
}
