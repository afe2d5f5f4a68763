// The drawing: the pad, the 28x28 image the models receive, each shown run's probabilities and the
// verdict. Asks POST /api/predict with the one image ("image") while drawing, ~8 times a second at most.
// Only a model of 28x28 grey images reads a drawing; for any other the pad says so (and hides when
// neither model can read it).
import * as api from "./api.js";
import { canvasToMnist, DrawPad, paintImage } from "./canvas.js";
import { $ } from "./dom.js";
import { imageShape } from "./format.js";
import { buildProbs, showProbs, verdict } from "./probs.js";
import { SLOTS } from "./store.js";

const MIN_GAP_MS = 120;
const RETRY_MS = 2000; // a 409: the run's first weight snapshot is a second or two away
// what a drawing is read as, where the class names alone say it badly
const ABOUT = { fashion_mnist: ["clothing (Fashion-MNIST)", "ten kinds of clothing: try a trouser, a bag or a shoe"] };

/** Whether a model of this input shape reads the pad's 28x28 grey drawing (unknown: yes, until the listing says). */
export const takesDrawing = (shape) => !shape || shape.join("x") === "1x28x28";
const digits = (classes) => !classes || classes.every((n) => /^\d$/.test(n));

export function mountPad(store) {
  const boxes = { a: $("#probs-a"), b: $("#probs-b") };
  const name = (slot, label) => store.classesOf(slot)?.[label] ?? String(label);
  const retryAt = {}; // run id -> when its weights may be there
  const state = { drawn: null, busy: false, again: false, last: 0 }; // drawn: 28x28 rows, or null
  const shown = { a: null, b: null }; // slot -> the probabilities shown for the drawing
  const drawable = (slot) => takesDrawing(store.shapeOf(slot));
  // the slots the pad is about: those with a run, else both panels as typed
  const considered = () => (SLOTS.some((s) => store.runs[s]) ? SLOTS.filter((s) => store.runs[s]) : SLOTS);

  /** Runs whose weights the server can use and that read a drawing: they have reported training, or an epoch. */
  const predictable = () =>
    SLOTS.filter((s) => {
      const run = store.runs[s];
      if (!run || !drawable(s) || performance.now() < (retryAt[run.id] ?? 0)) return false;
      return run.epoch.length > 0 || (run.batch.length > 0 && run.status !== "queued");
    });

  function showVerdict(labels) {
    const said = verdict(boxes, labels, name, store.datasetOf("a") === store.datasetOf("b"));
    const box = $("#verdict");
    box.classList.toggle("disagree", said.disagree);
    if (said.text) box.textContent = said.text;
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
    if (!SLOTS.some((s) => store.runs[s]?.batch.length && drawable(s))) {
      $("#verdict").textContent = "Train a model first; then its answer shows here.";
    }
    // one request per run, so a run without weights yet does not hold up the other's answer
    const answers = await Promise.all(runs.map((r) => api.predict(image, [r.id]).then((a) => a.predictions[0], (e) => e)));
    const labels = {};
    slots.forEach((slot, i) => {
      if (!state.drawn) return; // cleared meanwhile
      const answer = answers[i];
      if (answer instanceof Error) {
        shown[slot] = null;
        showProbs(boxes[slot], store.classesOf(slot), null, { message: answer.message });
        if (answer.status === 409) {
          retryAt[runs[i].id] = performance.now() + RETRY_MS;
          setTimeout(() => request(true), RETRY_MS + 100);
        }
      } else {
        shown[slot] = answer.probs;
        showProbs(boxes[slot], store.classesOf(slot), answer.probs);
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

  /** What a model that cannot read the pad takes instead: "32×32 RGB images (cifar10)". */
  const takes = (slot) => `${imageShape(store.shapeOf(slot))} images (${store.datasetOf(slot)})`;

  /** The sentence above the pad: who cannot read a drawing, and what the others read it as. */
  function note() {
    const slots = considered(), on = slots.filter(drawable), off = slots.filter((s) => !drawable(s));
    const out = [];
    if (off.length) {
      const same = off.length === 2 && takes("a") === takes("b");
      const who = same ? `Both models take ${takes("a")}` : off.map((s) => `Model ${s.toUpperCase()} takes ${takes(s)}`).join("; ");
      const then = on.length ? `so only model ${on[0].toUpperCase()} reads the pad` : "so the pad is off: classify an image file or see the test images below";
      out.push(`${who}, not 28×28 grey drawings, ${then}.`);
    }
    // the ones that read it: say so when their classes are names, not digits
    const worded = on.filter((s) => store.runs[s] && !digits(store.classesOf(s)));
    const about = (s) => {
      const classes = store.classesOf(s), dataset = store.datasetOf(s);
      const more = classes.length > 4 ? ", …" : "";
      return ABOUT[dataset] ?? [dataset, `its ${classes.length} classes: ${classes.slice(0, 4).join(", ")}${more}`];
    };
    if (worded.length === 2 && store.datasetOf("a") === store.datasetOf("b")) {
      const [what, kinds] = about("a");
      out.push(`Both models were trained on ${what}, so they read a drawing as one of ${kinds}.`);
    } else {
      for (const s of worded) {
        const [what, kinds] = about(s);
        out.push(`Model ${s.toUpperCase()} was trained on ${what}, so it reads a drawing as one of ${kinds}.`);
      }
    }
    return out.join(" ");
  }

  /** Names the rows after each slot's classes; hides the pad when no model can read it. */
  function renderSetup() {
    const slots = considered();
    $(".draw-grid").hidden = !slots.some(drawable);
    for (const slot of SLOTS) {
      const box = boxes[slot];
      box.dataset.dataset = store.datasetOf(slot);
      if (drawable(slot)) showProbs(box, store.classesOf(slot), shown[slot]);
      else {
        shown[slot] = null;
        showProbs(box, [], null, { message: `Model ${slot.toUpperCase()} takes ${takes(slot)}: it cannot read a drawing.` });
      }
    }
    const text = note();
    const box = $("#draw-note");
    box.hidden = !text;
    if (box.textContent !== text) box.textContent = text;
  }

  function clear() {
    pad.clear();
    state.drawn = null;
    paintImage($("#preview"), Array.from({ length: 28 }, () => new Array(28).fill(0)));
    for (const slot of SLOTS) shown[slot] = null;
    renderSetup();
    showVerdict({});
    $("#verdict").textContent = "Draw a digit to see both answers.";
  }

  for (const slot of SLOTS) buildProbs(boxes[slot], `Model ${slot.toUpperCase()}`);
  const pad = new DrawPad($("#pad"), (final) => {
    state.drawn = pad.empty ? null : canvasToMnist(pad.canvas);
    if (state.drawn) paintImage($("#preview"), state.drawn);
    request(final);
  });
  $("#clear").addEventListener("click", clear);
  clear();
  store.subscribe(({ kind }) => {
    // a run's classes and shape come with its run_started (a status change); an empty slot follows its panel
    if (kind === "reset") shown.a = shown.b = null; // another pair: the last answers were not theirs
    if (["reset", "status", "datasets", "check"].includes(kind)) renderSetup();
    // a drawing on the pad is read again by the newly shown runs, and after every epoch
    if (kind === "reset" || kind === "epoch") request();
  });
}
