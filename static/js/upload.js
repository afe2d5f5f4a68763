// Classifying one image: a PNG or JPEG file dropped on the zone or picked (sent as base64 to POST
// /api/predict, which resizes it to each run's dataset shape, grey or RGB), or a test image clicked in the
// grid (its answers come from the grid's). Shows each shown run's most likely classes by name.
import * as api from "./api.js";
import { paintImage } from "./canvas.js";
import { $ } from "./dom.js";
import { imageShape } from "./format.js";
import { buildProbs, showProbs, verdict } from "./probs.js";
import { SLOTS } from "./store.js";

const TOP = 5; // rows per model: the most likely classes
const WAIT_MS = 300; // an epoch and its run's status often come together: one request
const INVITE = "Choose or drop an image to see both answers.";

/** The file's bytes as a data: URL (the server takes one as base64). */
function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** Returns {showPicked}: what the grid calls with a clicked test image, and again when its answers change. */
export function mountUpload(store) {
  const boxes = { a: $("#upload-probs-a"), b: $("#upload-probs-b") };
  const drop = $("#drop"), input = $("#upload-file"), photo = $("#upload-image"), test = $("#upload-test");
  // the image shown: {kind: "file", name, data, asked} or {kind: "test", ...the grid's pick}, or null
  let shown = null, timer = null, busy = false, again = false;

  const ready = (run) => run && (run.epoch.length > 0 || run.status === "finished"); // it has weights
  const name = (slot, label) => store.classesOf(slot)?.[label] ?? String(label);
  // what a file's answers depend on: which runs answer, and the weights each has
  const keyOf = (slots) => slots.map((s) => store.runs[s]).map((r) => `${r.id}/${r.epoch.length}/${r.status}`).join(" ");

  function say(text) {
    $("#upload-message").textContent = text;
  }

  function showAnswers(probs, notes = {}) {
    const labels = {};
    for (const slot of SLOTS) {
      const p = probs[slot] ?? null;
      showProbs(boxes[slot], store.classesOf(slot), p, { top: TOP, message: notes[slot] ?? "" });
      if (p) labels[slot] = p.indexOf(Math.max(...p));
    }
    const said = verdict(boxes, labels, name, store.datasetOf("a") === store.datasetOf("b"));
    $("#upload-verdict").textContent = said.text || (shown ? "" : INVITE);
    $("#upload-verdict").classList.toggle("disagree", said.disagree);
    $("#upload").dataset.state = Object.keys(labels).length ? "answered" : "waiting";
  }

  /** Why a slot has no answer for the shown image, or "". */
  function noAnswer(slot) {
    const run = store.runs[slot];
    if (!run) return "no run yet";
    if (!ready(run)) return run.status === "queued" || run.status === "running" ? "no weights until its first epoch" : "no weights saved";
    return "";
  }

  async function ask() {
    if (shown?.kind !== "file") return;
    if (busy) {
      again = true;
      return;
    }
    const slots = SLOTS.filter((s) => ready(store.runs[s]));
    const notes = Object.fromEntries(SLOTS.map((s) => [s, noAnswer(s)]));
    if (!slots.length) {
      say("");
      showAnswers({}, notes);
      $("#upload-verdict").textContent = "Train a model first; then its answer shows here.";
      return;
    }
    const key = keyOf(slots), file = shown;
    if (!file.data || file.asked === key) return; // still being read, or answered for these weights
    busy = true;
    try {
      const answer = await api.predictFile(file.data, slots.map((s) => store.runs[s].id));
      if (shown !== file) return; // another image meanwhile
      file.asked = key;
      const probs = {};
      for (const p of answer.predictions) probs[store.slotOf(p.run_id)] = p.probs;
      say("");
      showAnswers(probs, notes);
    } catch (err) {
      if (shown !== file) return;
      file.asked = key; // the same file and weights would be refused again
      showAnswers({}, {});
      $("#upload-verdict").textContent = "";
      $("#upload").dataset.state = "refused";
      // "file: is not a PNG or JPEG image" -> "notes.txt was refused: it is not a PNG or JPEG image"
      say(err.field === "file" ? `${file.name} was refused: it ${err.message.replace(/^file: /, "")}` : err.message);
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
    timer = setTimeout(ask, WAIT_MS);
  }

  /** The caption under the image: what it is, and the shapes the server makes of it. */
  function caption() {
    if (!shown) return "";
    if (shown.kind === "test") return `test image ${shown.index + 1} of ${shown.dataset}: ${shown.classes[shown.label]}`;
    const slots = SLOTS.filter((s) => store.runs[s]), sizes = slots.map((s) => imageShape(store.shapeOf(s)));
    if (!slots.length) return shown.name;
    const to = new Set(sizes).size === 1 ? sizes[0] : sizes.map((size, i) => `${size} for ${slots[i].toUpperCase()}`).join(" and ");
    return `${shown.name}, resized by the server to ${to}`;
  }

  async function useFile(file) {
    if (!file) return;
    shown = { kind: "file", name: file.name, data: null, asked: null };
    const mine = shown;
    say("");
    test.hidden = true;
    photo.hidden = false;
    photo.src = URL.createObjectURL(file); // the browser shows it as it is; the server decides what it is
    $("#upload-source").textContent = caption();
    try {
      mine.data = await readFile(file);
    } catch (err) {
      say(`${file.name} could not be read: ${err.message}`);
      return;
    }
    if (shown === mine) ask();
  }

  /** A test image from the grid, with the probabilities each run gave it (null: none yet). update: the grid's
   * answers changed, which matters only while that image is still the one shown. */
  function showPicked(pick, update = false) {
    if (update && !(shown?.kind === "test" && shown.index === pick.index && shown.dataset === pick.dataset)) return;
    shown = { kind: "test", ...pick };
    say("");
    photo.hidden = true;
    test.hidden = false;
    paintImage(test, pick.image);
    $("#upload-source").textContent = caption();
    const notes = {};
    for (const slot of SLOTS) {
      if (pick.probs[slot]) continue;
      const other = store.runs[slot] && store.datasetOf(slot) !== pick.dataset;
      notes[slot] = other ? `trained on ${store.datasetOf(slot)}, not ${pick.dataset}` : noAnswer(slot) || "no answer yet";
    }
    showAnswers(pick.probs, notes);
  }

  for (const slot of SLOTS) buildProbs(boxes[slot], `Model ${slot.toUpperCase()}`);
  photo.addEventListener("error", () => (photo.hidden = true)); // not something a browser can show either
  input.addEventListener("change", () => {
    useFile(input.files[0]);
    input.value = ""; // the same file picked again is read again
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    useFile(e.dataTransfer.files[0]);
  });
  showAnswers({});
  store.subscribe(({ kind }) => {
    if (kind === "reset" || kind === "epoch" || kind === "status") {
      if (shown?.kind === "file") {
        $("#upload-source").textContent = caption();
        schedule(); // read again by newly shown runs, and with each epoch's weights
      }
      if (kind === "reset" && !shown) showAnswers({});
    }
  });
  return { showPicked };
}
