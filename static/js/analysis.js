// Glue of the analysis page (/analysis?a=<id>&b=<id>): picks two ended runs, fetches their
// stored analyses and fills each section. The only module here that touches the DOM broadly;
// heatmaps live in analysis-heatmap.js and charts in analysis-charts.js.
// body[data-ready] is set once a pair has been shown (errors included), for tests.

import { ApiError, call } from "./api.js";
import { canvasToMnist, DrawPad, paintImage } from "./canvas.js";
import { clear as clearChart, gradientChart, gradientRange, reliabilityChart } from "./analysis-charts.js";
import { confusionGrid, differenceGrid, paintMap } from "./analysis-heatmap.js";
import { aClass, className, classNames, shortNames } from "./classes.js";

const SLOTS = ["a", "b"];
const $ = (selector, root = document) => root.querySelector(selector);
const POLL_MS = 2000; // while a chosen run is still being analysed

// ---- REST ----

const enc = encodeURIComponent;
const api = {
  runs: () => call("GET", "/api/runs"),
  run: (id) => call("GET", `/api/runs/${enc(id)}`),
  analysis: (id) => call("GET", `/api/runs/${enc(id)}/analysis`),
  cell: (id, t, p) => call("GET", `/api/runs/${enc(id)}/confusion?true=${t}&pred=${p}`),
  compare: (a, b) => call("GET", `/api/compare?a=${enc(a)}&b=${enc(b)}`),
  gradients: (id) => call("GET", `/api/runs/${enc(id)}/gradients`),
  activations: (id, image) => call("POST", `/api/runs/${enc(id)}/activations`, { image }),
  samples: (dataset, count) => call("GET", `/api/samples?dataset=${enc(dataset)}&count=${count}`),
};

// ---- formatting ----

const pct = (x, digits = 2) => `${(100 * x).toFixed(digits)}%`;
const int = (n) => Math.round(n).toLocaleString("en-US");
const fixed = (x, d) => (x == null || !Number.isFinite(x) ? "—" : x.toFixed(d));

function bytes(n) {
  if (n == null) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function count(n) {
  if (n == null) return "—";
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

function seconds(s) {
  if (s == null) return "—";
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

/** Shows a sentence in a section's message line; `detail` (the server's own words) goes in its title. */
function message(root, text, detail = "") {
  const box = root.matches(".message, .verdict-line") ? root : $(".message", root);
  if (!box) return;
  box.textContent = text || "";
  if (detail && detail !== text) box.title = `The server said: ${detail}`;
  else box.removeAttribute("title");
}

function describe(run) {
  const c = run.config;
  const when = new Date(run.created * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const state = run.analysis === "ready" ? "" : ` · ${run.status}, analysis ${run.analysis ?? "none"}`;
  return `${run.id} · ${c.channels.join("-")} k${c.kernel_size} ${c.optimizer} lr ${c.lr} · ${c.epochs} ep${c.dataset === "mnist" ? "" : ` · ${c.dataset}`} · ${when}${state}`;
}

// ---- state ----

const state = {
  ids: { a: null, b: null },
  runs: new Map(), // id -> run summary
  results: { a: null, b: null }, // analyses of the pair shown
  generation: 0, // a newer load makes older answers stale
  poll: null,
  image: null, // the 28x28 input of the feature maps
  mapsGeneration: 0,
  samplesFor: null, // dataset of the thumbnails shown
};

// ---- pickers ----

async function fillPickers() {
  const { runs } = await api.runs();
  state.runs = new Map(runs.map((r) => [r.id, r]));
  const ready = runs.filter((r) => r.analysis === "ready"); // newest first
  const params = new URLSearchParams(location.search);
  const wanted = { a: params.get("a"), b: params.get("b") };
  // the two newest in the order they were trained: the older is A
  const defaults = { a: ready[1]?.id ?? ready[0]?.id ?? null, b: ready[0]?.id ?? null };
  for (const slot of SLOTS) {
    const id = wanted[slot] || defaults[slot];
    const select = $(`#run-${slot}`);
    const options = ready.map((r) => el("option", { value: r.id, text: describe(r) }));
    if (id && !ready.some((r) => r.id === id)) {
      const run = state.runs.get(id);
      options.unshift(el("option", { value: id, text: run ? describe(run) : `${id} · unknown run` }));
    }
    if (!options.length) options.push(el("option", { value: "", text: "no analysed runs yet" }));
    select.replaceChildren(...options);
    select.value = id ?? "";
    state.ids[slot] = id;
  }
  if (!ready.length && !wanted.a && !wanted.b) {
    message($(".pickers"), "No run has an analysis yet: train two models on the main page and come back when they have ended.");
  } else if (ready.length < 2 && !(wanted.a && wanted.b)) {
    message($(".pickers"), "Only one run has an analysis so far; both pickers show it until a second run ends.");
  }
}

function chosen() {
  for (const slot of SLOTS) state.ids[slot] = $(`#run-${slot}`).value || null;
  const url = new URL(location.href);
  for (const slot of SLOTS) {
    if (state.ids[slot]) url.searchParams.set(slot, state.ids[slot]);
    else url.searchParams.delete(slot);
  }
  history.replaceState(null, "", url);
  load();
}

// ---- loading a pair ----

async function load() {
  const gen = ++state.generation;
  clearTimeout(state.poll);
  document.body.removeAttribute("data-ready");
  const { a, b } = state.ids;
  if (!a || !b) {
    $("#verdict-text").textContent = "Choose two runs to compare.";
    document.body.dataset.ready = "empty";
    return;
  }
  message($(".pickers"), "");
  document.body.dataset.dataset = datasetOf("a"); // class names as words (clothing) need roomier thumbnails
  $("#cell").hidden = true;
  const settled = await Promise.allSettled([api.analysis(a), api.analysis(b)]);
  if (gen !== state.generation) return;
  const results = {}, errors = {};
  SLOTS.forEach((slot, i) => {
    if (settled[i].status === "fulfilled") results[slot] = settled[i].value;
    else errors[slot] = settled[i].reason;
  });
  state.results = { a: results.a ?? null, b: results.b ?? null };

  showMatrices(results, errors);
  showScores(results, errors);
  showFacts(results, errors);
  showCalibration(results, errors);
  showVerdict(results, errors);
  const pending = SLOTS.filter((slot) => errors[slot]?.status === 409);
  if (pending.length) waitFor(gen, pending.map((slot) => state.ids[slot]));

  await Promise.allSettled([showGradients(gen), showCompare(gen, results), showSamples(gen)]);
  if (gen !== state.generation) return;
  await showMaps();
  if (gen !== state.generation) return;
  document.body.dataset.ready = Object.keys(errors).length ? "partial" : "full";
}

/** While a chosen run is still running or being analysed, look again every few seconds. */
function waitFor(gen, ids) {
  state.poll = setTimeout(async () => {
    if (gen !== state.generation) return;
    try {
      const runs = await Promise.all(ids.map((id) => api.run(id)));
      if (runs.every((r) => r.analysis === "ready")) return void load();
      if (runs.some((r) => r.analysis === "failed" || ["failed"].includes(r.status))) return;
    } catch {
      return; // the error sentence is already on the page
    }
    waitFor(gen, ids);
  }, POLL_MS);
}

/** The data set of the run in a slot (MNIST when unknown); A and B are compared on one. */
function datasetOf(slot) {
  return state.runs.get(state.ids[slot])?.config.dataset ?? state.runs.get(state.ids[slot === "a" ? "b" : "a"])?.config.dataset ?? "mnist";
}

const classesOf = (slot) => ({ names: classNames(datasetOf(slot)), short: shortNames(datasetOf(slot)) });
const nameOf = (slot, label) => className(datasetOf(slot), label);

/**
 * An API error about the run in a slot, phrased for a person: "Run A (zzz) does not exist; pick
 * another run above." The server's sentences name fields and ids ("run_id: no run with id 'zzz'");
 * showErrors() keeps them in the message's title.
 */
function errorText(slot, error) {
  const id = state.ids[slot], who = `Run ${slot.toUpperCase()}${id ? ` (${id})` : ""}`;
  const said = String(error?.message ?? error ?? "");
  if (error?.status === 404 && /no run with id/.test(said)) return `${who} does not exist; pick another run above.`;
  if (error?.status === 0) return `${who} could not be loaded: the server cannot be reached; is it still running?`;
  if (!id) return `Choose run ${slot.toUpperCase()} above.`;
  // 409s are sentences already ("Run <id> is still running; …"): name the slot as well as the id
  const escaped = id.replace(/[.*+?^$()|[\]{}\\]/g, "\\$&");
  const named = said.replace(new RegExp(`\\b([Rr]un) ${escaped}(?![\\w-])`), `$1 ${slot.toUpperCase()} (${id})`);
  if (named !== said) return named;
  return `${who} could not be loaded: ${said.replace(/^[\w.[\]]+: /, "")}`;
}

/** errorText for each slot that has an error, in one line, with the server's words for a title. */
function showErrors(root, errors, prefix = "") {
  const bad = SLOTS.filter((s) => errors[s]);
  const text = bad.map((s) => errorText(s, errors[s])).join(" ");
  message(root, text ? prefix + text : "", bad.map((s) => `${s.toUpperCase()}: ${errors[s].message}`).join(" "));
}

// ---- confusion matrices ----

function showMatrices(results, errors) {
  const boxes = { a: $('[data-kind="a"]'), b: $('[data-kind="b"]'), diff: $('[data-kind="diff"]') };
  for (const slot of SLOTS) {
    const grid = $(".matrix", boxes[slot]);
    if (results[slot]) {
      confusionGrid(grid, results[slot].confusion, (t, p, btn) => pickCell(slot, t, p, btn), classesOf(slot));
      message(boxes[slot], "");
    } else {
      grid.replaceChildren();
      showErrors(boxes[slot], { [slot]: errors[slot] });
    }
  }
  const diff = $(".matrix", boxes.diff);
  if (results.a && results.b) {
    differenceGrid(diff, results.a.confusion, results.b.confusion, (t, p, btn) => pickCell("diff", t, p, btn), classesOf("a"));
    message(boxes.diff, "");
  } else {
    diff.replaceChildren();
    message(boxes.diff, "The difference needs both analyses.");
  }
}

async function pickCell(kind, t, p, button) {
  for (const b of document.querySelectorAll(".cm-cell[aria-pressed]")) b.removeAttribute("aria-pressed");
  button.setAttribute("aria-pressed", "true");
  const view = $("#cell");
  view.hidden = false;
  view.dataset.kind = kind;
  view.dataset.state = "loading";
  const names = kind === "diff" ? "a" : kind;
  $("#cell-title").textContent = `True ${nameOf(names, t)}, predicted ${nameOf(names, p)}${t === p ? " (right)" : ""}`;
  const body = $("#cell-body");
  body.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
  const slots = kind === "diff" ? SLOTS : [kind];
  const key = `${kind}:${t}:${p}:${state.generation}`;
  view.dataset.key = key;
  const settled = await Promise.allSettled(slots.map((slot) => api.cell(state.ids[slot], t, p)));
  if (view.dataset.key !== key) return;
  body.replaceChildren(
    ...slots.map((slot, i) => {
      const block = el("div", { class: "cell-run", "data-slot": slot });
      const answer = settled[i];
      if (answer.status === "rejected") {
        block.append(el("h4", { text: slot.toUpperCase() }), el("p", { class: "message", text: errorText(slot, answer.reason), title: answer.reason.message }));
        return block;
      }
      const { count: n, images, confidences, indices } = answer.value;
      const shown = images.length < n ? ` (first ${images.length} shown)` : "";
      block.append(el("h4", { text: `${slot.toUpperCase()}: ${int(n)} image${n === 1 ? "" : "s"}${shown}` }));
      const thumbs = el("div", { class: "thumbs" });
      images.forEach((image, k) => {
        thumbs.append(thumb(image, `#${indices[k]}`, `${pct(confidences[k], 0)}`, `test image ${indices[k]}: predicted ${nameOf(slot, p)} with confidence ${pct(confidences[k], 1)}`));
      });
      if (!n) thumbs.append(el("p", { class: "hint", text: "No test image falls in this cell." }));
      block.append(thumbs);
      return block;
    }),
  );
  view.dataset.state = "shown";
  view.scrollIntoView({ block: "nearest" });
}

function thumb(image, top, bottom, title) {
  const canvas = el("canvas", { width: 28, height: 28 });
  paintImage(canvas, image);
  const figure = el("figure", { class: "thumb", title }, canvas);
  const caption = el("figcaption");
  if (top) caption.append(el("span", { class: "truth", text: top }));
  if (bottom) caption.append(typeof bottom === "string" ? el("span", { text: bottom }) : bottom);
  figure.append(caption);
  return figure;
}

// ---- tables ----

/** Marks the better of two values in two cells; higher=true when more is better. */
function mark(cells, values, higher = true) {
  const [x, y] = values;
  if (x == null || y == null || x === y) return;
  const best = (x > y) === higher ? 0 : 1;
  cells[best].classList.add("better");
  cells[best].append(el("span", { class: "mark", text: " ▲", "aria-label": "better" }));
}

function showScores(results, errors) {
  const section = $(".scores");
  const body = $("tbody", section), foot = $("tfoot", section);
  body.replaceChildren();
  foot.replaceChildren();
  showErrors(section, errors);
  if (!results.a && !results.b) return;
  const named = results.a ? "a" : "b";
  for (let c = 0; c < 10; c++) {
    const row = el("tr", {}, el("th", { scope: "row", text: nameOf(named, c) }));
    for (const metric of ["precision", "recall", "f1"]) {
      const values = SLOTS.map((s) => results[s]?.per_class[c][metric] ?? null);
      const cells = SLOTS.map((s, i) => el("td", { class: `col-${s}`, text: fixed(values[i], 3) }));
      mark(cells, values);
      row.append(...cells);
    }
    body.append(row);
  }
  for (const [label, key] of [["accuracy", "accuracy"], ["macro F1", "macro_f1"]]) {
    const values = SLOTS.map((s) => results[s]?.[key] ?? null);
    const cells = SLOTS.map((s, i) =>
      el("td", { colSpan: 3, class: `col-${s}`, text: values[i] == null ? "—" : `${s.toUpperCase()} ${key === "accuracy" ? pct(values[i]) : values[i].toFixed(4)}` }),
    );
    mark(cells, values);
    foot.append(el("tr", {}, el("th", { scope: "row", text: label }), ...cells));
  }
}

// [label, key or function, format, higher is better (null: not compared)]
const FACTS = [
  ["test accuracy", "accuracy", (v) => pct(v), true],
  ["macro F1", "macro_f1", (v) => v.toFixed(4), true],
  ["expected calibration error", "ece", (v) => v.toFixed(4), false],
  ["parameters", "params", int, false],
  ["size on disk", "size_bytes", bytes, false],
  ["multiply-accumulates per image", "macs", count, false],
  ["training time", "train_seconds", seconds, false],
  ["latency, batch 1 (best of 50)", "latency_ms", (v) => `${v.toFixed(3)} ms`, false],
  ["throughput, batch 256 (best of 10)", "throughput", (v) => `${int(v)} images/s`, true],
  ["peak memory in training", "peak_memory_bytes", bytes, false],
  ["device", "device", String, null],
  ["test images", "test_samples", int, null],
];

function showFacts(results, errors) {
  const section = $(".facts");
  const body = $("tbody", section);
  body.replaceChildren();
  showErrors(section, errors);
  if (!results.a && !results.b) return;
  for (const [label, key, format, higher] of FACTS) {
    const values = SLOTS.map((s) => results[s]?.[key] ?? null);
    const cells = SLOTS.map((s, i) => el("td", { class: `col-${s}`, "data-fact": key, text: values[i] == null ? "—" : format(values[i]) }));
    if (higher !== null) mark(cells, values, higher);
    const [x, y] = values;
    const ratio = typeof x === "number" && typeof y === "number" && x > 0 && higher !== null ? `${(y / x).toFixed(2)}×` : "";
    body.append(el("tr", { "data-fact": key }, el("th", { scope: "row", text: label }), ...cells, el("td", { class: "ratio", text: ratio })));
  }
}

// ---- verdict ----

function cost(what, winner, loser, format, less) {
  const r = winner / loser;
  const detail = ` (${format(winner)} vs ${format(loser)})`;
  if (!Number.isFinite(r) || Math.abs(r - 1) < 0.02) return `about the same ${what}${detail}`;
  const times = (x) => `${x >= 10 ? Math.round(x).toLocaleString("en-US") : x.toFixed(1)}×`;
  return r > 1 ? `${times(r)} the ${what}${detail}` : `${times(1 / r)} ${less} ${what}${detail}`;
}

function showVerdict(results, errors) {
  const line = $("#verdict-text");
  const { a, b } = results;
  if (!a || !b) {
    showErrors(line, errors, "No verdict yet. ");
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

// ---- calibration ----

function showCalibration(results, errors) {
  for (const slot of SLOTS) {
    const box = $(`.calibration [data-slot="${slot}"]`), canvas = $(`#rel-${slot}`);
    const r = results[slot];
    if (!r) {
      clearChart(canvas);
      $(`#ece-${slot}`).textContent = "";
      showErrors(box, { [slot]: errors[slot] });
      continue;
    }
    message(box, "");
    $(`#ece-${slot}`).textContent = `· ECE ${r.ece.toFixed(4)}`;
    reliabilityChart(canvas, r.reliability, slot);
  }
}

// ---- gradient flow ----

async function showGradients(gen) {
  const settled = await Promise.allSettled(SLOTS.map((s) => api.gradients(state.ids[s])));
  if (gen !== state.generation) return;
  const answers = settled.filter((x) => x.status === "fulfilled").map((x) => x.value);
  const range = gradientRange(answers);
  SLOTS.forEach((slot, i) => {
    const box = $(`.gradients [data-slot="${slot}"]`), canvas = $(`#grad-${slot}`);
    if (settled[i].status === "rejected") {
      clearChart(canvas);
      showErrors(box, { [slot]: settled[i].reason });
      return;
    }
    const { layers } = settled[i].value;
    message(box, layers.length ? "" : `${slot.toUpperCase()}: no gradients were logged (they are sampled every 50 batches).`);
    gradientChart(canvas, layers, range);
  });
}

// ---- only one got it right ----

function answer(slot, pred, conf, label) {
  const right = pred === label;
  return el("span", { class: `guess slot-${slot} ${right ? "right" : "wrong"}`, text: `${slot.toUpperCase()} ${nameOf(slot, pred)} ${pct(conf, 0)}` });
}

async function showCompare(gen, results) {
  const section = $(".gallery");
  for (const slot of SLOTS) $(`#only-${slot}`).replaceChildren();
  for (const h of section.querySelectorAll(".only-title")) h.textContent = `Only ${h.closest(".only").dataset.slot.toUpperCase()} right`;
  if (!results.a || !results.b) {
    message(section, "The gallery needs both analyses.");
    return;
  }
  let data;
  try {
    data = await api.compare(state.ids.a, state.ids.b);
  } catch (error) {
    if (gen === state.generation) {
      const slot = SLOTS.find((s) => error.message.includes(`'${state.ids[s]}'`)) ?? (error.field === "b" ? "b" : "a");
      message(section, errorText(slot, error), error.message);
    }
    return;
  }
  if (gen !== state.generation) return;
  message(section, "");
  for (const slot of SLOTS) {
    const items = data[`only_${slot}`], total = data[`count_only_${slot}`];
    const title = $(`.only[data-slot="${slot}"] .only-title`, section);
    title.textContent = `Only ${slot.toUpperCase()} right: ${int(total)} image${total === 1 ? "" : "s"}${items.length < total ? ` (first ${items.length} shown)` : ""}`;
    const box = $(`#only-${slot}`);
    for (const item of items) {
      const answers = el("span", { class: "answers" }, answer("a", item.pred_a, item.conf_a, item.label), answer("b", item.pred_b, item.conf_b, item.label));
      const title = `test image ${item.index}, ${aClass(datasetOf("a"), item.label)}: A says ${nameOf("a", item.pred_a)} (${pct(item.conf_a, 1)}), B says ${nameOf("b", item.pred_b)} (${pct(item.conf_b, 1)})`;
      box.append(thumb(item.image, `true ${nameOf("a", item.label)}`, answers, title));
    }
    if (!items.length) box.append(el("p", { class: "hint", text: "None." }));
  }
}

// ---- feature maps ----

let pad = null;

async function showSamples(gen) {
  const run = state.runs.get(state.ids.a) ?? state.runs.get(state.ids.b);
  const dataset = run?.config.dataset ?? "mnist";
  if (state.samplesFor === dataset) return;
  const box = $("#maps-samples");
  let data;
  try {
    data = await api.samples(dataset, 16);
  } catch (error) {
    message($(".features"), `The test images could not be loaded: ${error.message}`);
    return;
  }
  if (gen !== state.generation) return;
  state.samplesFor = dataset;
  box.replaceChildren(
    ...data.images.map((image, i) => {
      const canvas = el("canvas", { width: 28, height: 28 });
      paintImage(canvas, image);
      const what = aClass(dataset, data.labels[i]);
      const button = el("button", { type: "button", class: "sample", title: `test image ${i}, ${what}`, "aria-label": `test image ${i}, ${what}` }, canvas);
      button.addEventListener("click", () => useImage(image, `test image ${i} (${what})`, button));
      return button;
    }),
  );
  if (!state.image) selectSample(box.firstElementChild, data.images[0], `test image 0 (${aClass(dataset, data.labels[0])})`);
}

function selectSample(button, image, source) {
  for (const b of document.querySelectorAll("#maps-samples .sample")) b.setAttribute("aria-pressed", String(b === button));
  state.image = image;
  state.source = source;
  paintImage($("#maps-preview"), image);
  $("#maps-source").textContent = `What both models receive: ${source}`;
}

function useImage(image, source, button = null) {
  selectSample(button, image, source);
  if (button) pad?.clear();
  showMaps();
}

async function showMaps() {
  if (!state.image) return;
  const gen = ++state.mapsGeneration;
  const section = $(".features");
  section.dataset.state = "loading";
  const settled = await Promise.allSettled(SLOTS.map((s) => (state.ids[s] ? api.activations(state.ids[s], state.image) : Promise.reject(new Error("no run chosen")))));
  if (gen !== state.mapsGeneration) return;
  SLOTS.forEach((slot, i) => {
    const group = $(`.maps-model[data-slot="${slot}"]`), box = $(`#maps-${slot}`);
    box.replaceChildren();
    if (settled[i].status === "rejected") {
      showErrors(group, { [slot]: settled[i].reason });
      return;
    }
    message(group, "");
    for (const layer of settled[i].value.layers) box.append(layerMaps(layer));
  });
  section.dataset.state = "shown";
}

function layerMaps({ name, shape, maps }) {
  const [channels, h, w] = shape;
  const readout = el("span", { class: "readout hint", "aria-live": "polite" });
  const row = el("div", { class: "layer", "data-layer": name }, el("h4", {}, el("span", { text: `${name} · ${channels} × ${h} × ${w}` }), readout));
  const tiles = el("div", { class: `tiles size-${w > 14 ? "l" : w > 7 ? "m" : "s"}` });
  maps.forEach((channel, c) => {
    const canvas = el("canvas", { class: "map" });
    const [lo, hi] = paintMap(canvas, channel);
    const text = `${name} channel ${c}: ${lo.toFixed(3)} to ${hi.toFixed(3)}${hi === 0 ? " (silent)" : ""}`;
    canvas.title = text;
    canvas.setAttribute("aria-label", text);
    canvas.setAttribute("role", "img");
    canvas.addEventListener("mouseenter", () => (readout.textContent = text));
    canvas.addEventListener("mouseleave", () => (readout.textContent = ""));
    tiles.append(canvas);
  });
  row.append(tiles);
  return row;
}

function setupPad() {
  pad = new DrawPad($("#maps-pad"), (final) => {
    const image = canvasToMnist($("#maps-pad"));
    paintImage($("#maps-preview"), image);
    if (final) useImage(image, "your drawing");
  });
  $("#maps-clear").addEventListener("click", () => pad.clear());
}

// ---- start ----

async function start() {
  setupPad();
  $("#cell-close").addEventListener("click", () => {
    $("#cell").hidden = true;
    for (const b of document.querySelectorAll(".cm-cell[aria-pressed]")) b.removeAttribute("aria-pressed");
  });
  for (const slot of SLOTS) $(`#run-${slot}`).addEventListener("change", chosen);
  try {
    await fillPickers();
  } catch (error) {
    message($(".pickers"), error.message);
    document.body.dataset.ready = "error";
    return;
  }
  await load();
}

start();
