// The datasets the server lists (GET /api/datasets: name, shape, counts, on disk), a grid of training
// samples of the one chosen, and a preview of a panel's augmentation on them (POST /api/augment/preview)
// as the panel was last checked. Puts the listing in the store, where the pad, the grid and the upload
// find each dataset's shape and classes.
import * as api from "./api.js";
import { paintImage } from "./canvas.js";
import { $, el } from "./dom.js";
import { imageShape, int } from "./format.js";
import { SLOTS } from "./store.js";

const SAMPLES = 32; // training images shown of the chosen dataset
const PREVIEW = 16; // originals and their augmented copies

/** "5,000 each", or "4,010 to 6,742" when the classes differ; "—" where counting would read the images. */
function countsText(counts) {
  if (!counts?.length) return "—";
  const low = Math.min(...counts), high = Math.max(...counts);
  return low === high ? `${int(low)} each` : `${int(low)} to ${int(high)}`;
}

/** "crop 4 px, flip" or "none": a panel's augment as it reads. */
function augmentText(augment) {
  const parts = [];
  if (augment?.crop) parts.push(`random crop after ${augment.crop} px of padding`);
  if (augment?.flip) parts.push("horizontal flip");
  return parts.join(" and ");
}

function thumb(image, caption) {
  const canvas = el("canvas", { width: image[0][0].length, height: image[0].length });
  paintImage(canvas, image);
  return el("figure", { class: "thumb" }, canvas, el("figcaption", { text: caption }));
}

export function mountDatasets(store) {
  const table = $("#datasets-table tbody");
  let chosen = null, picked = false, seed = 0, asked = 0; // picked: by the user; asked: the latest samples request

  function say(text) {
    $("#datasets-message").textContent = text;
  }

  async function list() {
    try {
      const answer = await api.listDatasets();
      say("");
      store.setDatasets(answer.datasets);
    } catch (err) {
      say(`The datasets could not be listed: ${err.message}`);
    }
  }

  function renderTable() {
    const rows = (store.datasets ?? []).map((d) => {
      const pick = el("button", { type: "button", class: "pick-dataset", text: d.name, "aria-pressed": String(d.name === chosen) });
      pick.addEventListener("click", () => {
        picked = true;
        choose(d.name);
      });
      const cells = [imageShape(d.shape), int(d.train), int(d.test), String(d.classes.length), countsText(d.counts)];
      cells.push(d.on_disk ? "yes" : "no: downloaded by the first run");
      return el("tr", { "data-name": d.name }, el("th", { scope: "row" }, pick), ...cells.map((text) => el("td", { text })));
    });
    table.replaceChildren(...rows);
  }

  /** The chosen dataset: its classes with their counts, and its first training images. */
  async function choose(name) {
    chosen = name;
    renderTable();
    const d = store.dataset(name);
    const detail = $("#dataset-detail");
    detail.dataset.dataset = name;
    $("#dataset-title").textContent = d ? `${name}: ${d.classes.length} classes, ${imageShape(d.shape)}` : name;
    $("#dataset-classes").replaceChildren(
      ...(d?.classes ?? []).map((c, i) => el("li", { text: d.counts ? `${c} (${int(d.counts[i])})` : c })),
    );
    const samples = $("#train-samples");
    if (!d?.on_disk) {
      samples.replaceChildren();
      $("#train-samples-note").textContent = "Not on disk yet: the first run that uses it downloads it.";
      return;
    }
    const mine = ++asked;
    $("#train-samples-note").textContent = "loading training images…";
    try {
      const answer = await api.samples(name, SAMPLES, "train");
      if (mine !== asked) return;
      $("#train-samples-note").textContent = `The first ${answer.images.length} training images, as the runs read them.`;
      samples.replaceChildren(...answer.images.map((image, i) => thumb(image, answer.classes[answer.labels[i]])));
    } catch (err) {
      if (mine !== asked) return;
      samples.replaceChildren();
      $("#train-samples-note").textContent = `The training images could not be loaded: ${err.message}`;
    }
  }

  /** Originals beside their augmented copies, for model `slot`'s dataset and augment as last checked. */
  async function preview(slot) {
    const up = slot.toUpperCase(), config = store.checks[slot].config;
    const note = $("#augment-note"), box = $("#augment-preview");
    if (!config || store.checks[slot].state !== "valid") {
      box.replaceChildren();
      note.textContent = `Model ${up}'s panel has no valid config yet; fix its marked fields first.`;
      return;
    }
    if (config.dataset !== chosen) choose(config.dataset);
    const how = augmentText(config.augment);
    note.textContent = `Model ${up}: loading ${config.dataset} with ${how || "no augmentation"}…`;
    try {
      const answer = await api.augmentPreview(config.dataset, config.augment, PREVIEW, seed++, config.image_size);
      box.dataset.slot = slot;
      box.replaceChildren(
        ...answer.original.map((image, i) => {
          const name = answer.classes[answer.labels[i]];
          return el("div", { class: "pair" }, thumb(image, name), thumb(answer.augmented[i], "augmented"));
        }),
      );
      note.textContent = how
        ? `Model ${up} trains on ${config.dataset} with ${how}: each original above what one batch might see. Press again for other draws.`
        : `Model ${up} trains on ${config.dataset} without augmentation: its batches are the originals. Set crop or flip in its panel to see them change.`;
    } catch (err) {
      box.replaceChildren();
      note.textContent = `The preview could not be made: ${err.message}`;
    }
  }

  $("#datasets-refresh").addEventListener("click", list);
  for (const slot of SLOTS) $(`#augment-${slot}`).addEventListener("click", () => preview(slot));
  /** Until the user picks one: the dataset model A trains on (its run's, else its panel's), else the first on disk. */
  function follow() {
    if (!store.ready || !store.datasets?.length) return;
    if (picked && store.dataset(chosen)) return;
    const d = store.dataset(store.datasetOf("a")) ?? store.datasets.find((x) => x.on_disk) ?? store.datasets[0];
    if (d.name !== chosen) choose(d.name);
  }

  store.subscribe(({ kind }) => {
    if (kind === "datasets") {
      renderTable();
      if (chosen !== null && store.dataset(chosen)) choose(chosen); // listed again: the counts may have changed
    }
    if (["datasets", "ready", "reset", "check"].includes(kind)) follow();
  });
  list();
}
