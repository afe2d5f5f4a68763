// The glue: panels, buttons, charts, progress, drawing and the test-image grid.
// The server is the source of truth: the page rebuilds itself from `history` at any time.

import * as api from "./api.js";
import { canvasToMnist, DrawPad, paintImage } from "./canvas.js";
import { CurveChart } from "./charts.js";
import { aClass, className, isFashion } from "./classes.js";
import { CHOICES, DEFAULTS, FIELDS, paramCount, PRESETS, toFormValues, validate } from "./config.js";
import { clock, secondsLeft } from "./progress.js";
import { connect } from "./socket.js";

const SLOTS = ["a", "b"];
const ENDED = ["finished", "stopped", "failed"];
const GRID_COUNT = 16;
const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  runs: { a: null, b: null }, // slot -> {id, config, status, error, analysis, info, batch: [], epoch: []}
  group: null, // the group shown: runs started together share one; slot 0 is A, slot 1 is B
  xAxis: "samples",
  known: new Set(), // every run id the server has told us of; events of those not shown are dropped
  buffered: new Map(), // run id never heard of -> events that arrived for it (until a listing)
  syncing: null,
  samples: null, // {dataset, images, labels}
};

const panels = {}; // slot -> {root, inputs: {field: element}, messages: {field: element}, ...}
const charts = {};
let pad;

// ---- panels ------------------------------------------------------------------------------

function buildPanel(slot) {
  const root = $(`#panel-${slot}`);
  root.append($("#panel-template").content.cloneNode(true));
  const panel = { root, inputs: {}, messages: {} };
  for (const el of root.querySelectorAll("[data-name]")) {
    const name = el.dataset.name;
    el.id = `${slot}-${name}`;
    el.name = `${slot}-${name}`;
    const label = el.closest(".field").querySelector("label");
    label.htmlFor = el.id;
    if (name === "preset") continue;
    panel.inputs[name] = el;
    for (const value of CHOICES[name] ?? []) el.append(new Option(value, value));
    const message = document.createElement("p");
    message.className = "message field-message";
    message.id = `${slot}-${name}-message`;
    message.setAttribute("aria-live", "polite");
    el.closest(".field").append(message);
    el.setAttribute("aria-describedby", message.id);
    panel.messages[name] = message;
    el.addEventListener("input", () => checkPanel(slot));
    el.addEventListener("change", () => checkPanel(slot));
  }
  const preset = $(`#${slot}-preset`);
  for (const [key, p] of Object.entries(PRESETS)) preset.append(new Option(p.label, key));
  preset.addEventListener("change", () => {
    if (!preset.value) return;
    setValues(slot, PRESETS[preset.value].values);
    preset.value = "";
  });
  panel.params = $(".params", root);
  panel.run = $(".run", root);
  panel.status = $(".status", root);
  panel.stop = $(".stop-one", root);
  panel.stop.textContent = `Stop ${slot.toUpperCase()}`;
  panel.stop.addEventListener("click", () => stopRuns([slot]));
  panel.progress = $("progress", root);
  panel.progress.setAttribute("aria-label", `Progress ${slot.toUpperCase()}`);
  panel.progressText = $(".progress-text", root);
  panel.runMessage = $(".run-message", root);
  panel.log = $(".log", root);
  panel.log.setAttribute("aria-label", `Epoch log ${slot.toUpperCase()}`);
  panels[slot] = panel;
  setValues(slot, DEFAULTS[slot]);
}

function setValues(slot, values) {
  for (const [name, value] of Object.entries(values)) {
    if (panels[slot].inputs[name]) panels[slot].inputs[name].value = value;
  }
  checkPanel(slot);
}

function readValues(slot) {
  return Object.fromEntries(FIELDS.map((name) => [name, panels[slot].inputs[name].value]));
}

/** Validates a panel as typed, shows its messages and parameter count; config or null. */
function checkPanel(slot) {
  const panel = panels[slot];
  const { config, errors } = validate(readValues(slot));
  for (const name of FIELDS) showFieldError(slot, name, errors[name] ?? "");
  panel.params.textContent = config ? `${paramCount(config).toLocaleString("en-US")} parameters` : "parameters: fix the marked field";
  panel.params.dataset.params = config ? String(paramCount(config)) : "";
  return config;
}

function showFieldError(slot, name, text) {
  const panel = panels[slot];
  panel.messages[name].textContent = text;
  panel.inputs[name].setAttribute("aria-invalid", text ? "true" : "false");
}

// ---- train and stop ------------------------------------------------------------------------

function say(text) {
  $("#train-message").textContent = text;
}

async function train() {
  say("");
  const configs = SLOTS.map(checkPanel);
  const bad = SLOTS.filter((slot, i) => !configs[i]);
  if (bad.length) {
    const fields = SLOTS.filter((s) => bad.includes(s)).map((s) => panels[s].root.querySelectorAll("[aria-invalid=true]").length);
    const many = fields.reduce((x, y) => x + y, 0) > 1;
    const who = bad.length === 2 ? "Models A and B have" : `Model ${bad[0].toUpperCase()} has`;
    say(`${who} ${many ? "invalid values; fix the marked fields" : "an invalid value; fix the marked field"} first. Nothing was sent.`);
    panels[bad[0]].root.querySelector("[aria-invalid=true]")?.focus();
    return;
  }
  const button = $("#train");
  button.disabled = true;
  try {
    const answer = await api.startRuns($("#mode").value, configs);
    // usually `runs_created` has shown them already; the answer covers a socket that is down
    if (!sameRuns(answer.runs.map((r, i) => ({ ...r, slot: i })))) {
      adopt(answer.runs.map((r, i) => ({ ...r, slot: i, status: "queued", error: null, info: {}, metrics: {} })));
    }
    say("");
  } catch (err) {
    showServerError(err);
  } finally {
    updateButtons();
  }
}

/** A 400 names its field ("models[1].lr"): show it there; anything else by the Train button. */
function showServerError(err) {
  const match = /^models\[(\d)\]\.(\w+)$/.exec(err.field ?? "");
  if (match && SLOTS[match[1]] && panels[SLOTS[match[1]]].inputs[match[2]]) {
    const slot = SLOTS[match[1]];
    const rule = err.message.replace(/^models\[\d\]\.\w+: /, ""); // the label above says which field
    showFieldError(slot, match[2], rule);
    say(`The server refused model ${slot.toUpperCase()}'s ${match[2]}: ${rule}`);
  } else {
    say(err.message);
  }
}

async function stopRuns(slots) {
  for (const slot of slots) {
    const run = state.runs[slot];
    if (!run || ENDED.includes(run.status)) continue;
    panels[slot].stop.disabled = true;
    api.stopRun(run.id).then((answer) => {
      if (!["ready", "failed"].includes(run.analysis)) run.analysis = answer.analysis ?? null; // "pending" if it had weights
      if (answer.status === "stopped") apply("run_stopped", { run_id: run.id }); // the event may come later
    }, (err) => {
      panels[slot].runMessage.textContent = err.message;
      updateButtons();
    });
  }
}

function updateButtons() {
  const active = SLOTS.filter((s) => state.runs[s] && !ENDED.includes(state.runs[s].status));
  $("#stop").disabled = active.length === 0;
  $("#train").disabled = active.length > 0;
  $("#train").title = active.length ? "Stop the current runs first" : "";
  for (const slot of SLOTS) panels[slot].stop.disabled = !active.includes(slot);
}

// ---- runs: adopt a group, apply events ------------------------------------------------------

const groupOf = (run) => run.group ?? run.id; // a record from before groups is a group of its own

/** The group to show: the newest run's, in slot order (A first). */
function newestGroup(runs) {
  if (!runs.length) return [];
  const newest = runs.reduce((a, b) => (b.created > a.created ? b : a));
  return runs.filter((r) => groupOf(r) === groupOf(newest)).sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0));
}

/** Whether these runs (with slots) are the ones shown, each in its slot. */
function sameRuns(runs) {
  const wanted = new Map(runs.map((r) => [SLOTS[r.slot ?? 0], r.id]));
  return SLOTS.every((slot) => state.runs[slot]?.id === wanted.get(slot));
}

/** Shows these runs (records as in GET /api/runs/<id>; metrics may be missing) in their slots, from scratch. */
function adopt(runs) {
  for (const slot of SLOTS) state.runs[slot] = null;
  for (const r of runs) state.known.add(r.id);
  state.group = runs.length ? groupOf(runs[0]) : null;
  // the group's mode, so a reload shows how it was started (the Train answer carries no mode)
  const mode = runs.find((r) => r.mode)?.mode;
  if (mode && [...$("#mode").options].some((o) => o.value === mode)) $("#mode").value = mode;
  for (const chart of Object.values(charts)) chart.reset();
  runs.forEach((r, i) => {
    const slot = SLOTS[r.slot ?? i];
    if (!slot) return;
    const panel = panels[slot];
    state.runs[slot] = { id: r.id, config: r.config, status: r.status, error: r.error, analysis: r.analysis ?? null, info: { ...r.info }, batch: [], epoch: [] };
    panel.log.replaceChildren();
    panel.runMessage.textContent = r.error ? `Run failed: ${r.error}` : "";
    setValues(slot, toFormValues(r.config));
    for (const p of r.metrics?.batch ?? []) addBatch(slot, p);
    for (const p of r.metrics?.epoch ?? []) addEpoch(slot, p, false);
    for (const [name, payload] of state.buffered.get(r.id) ?? []) apply(name, payload);
    state.buffered.delete(r.id);
  });
  for (const slot of SLOTS) {
    if (!state.runs[slot]) {
      panels[slot].log.replaceChildren();
      panels[slot].runMessage.textContent = "";
    }
    renderRun(slot);
  }
  updateButtons();
  renderAnalysisLink();
  renderClasses();
  scheduleGrid();
}

/** `runs_created`: a group was just started, here or in another tab; show it at once. */
function onRunsCreated({ group, runs }) {
  for (const r of runs) state.known.add(r.id);
  if (sameRuns(runs)) state.group = group; // this tab's own Train answer came first
  else adopt(runs.map((r) => ({ ...r, group: r.group ?? group })));
}

function slotOf(runId) {
  return SLOTS.find((s) => state.runs[s]?.id === runId);
}

function apply(name, payload) {
  const slot = slotOf(payload.run_id);
  if (!slot) {
    if (state.known.has(payload.run_id)) return; // a run of an older group
    // a run never heard of (its `runs_created` was missed, say over a reconnect): ask for a listing
    const list = state.buffered.get(payload.run_id) ?? [];
    if (list.length < 2000) list.push([name, payload]);
    state.buffered.set(payload.run_id, list);
    scheduleSync();
    return;
  }
  const run = state.runs[slot];
  if (name === "batch") addBatch(slot, payload);
  else if (name === "epoch") addEpoch(slot, payload, true);
  else if (name === "run_started") {
    Object.assign(run.info, payload);
    if (!ENDED.includes(run.status)) run.status = "running";
  } else if (name === "run_finished") {
    Object.assign(run.info, payload);
    run.status = "finished";
  } else if (name === "run_stopped") run.status = "stopped";
  else if (name === "run_failed") {
    run.status = "failed";
    run.error = payload.error;
    panels[slot].runMessage.textContent = `Run failed: ${payload.error}`;
  } else if (name === "analysis_ready") run.analysis = "ready";
  else if (name === "analysis_failed") run.analysis = "failed";
  if (name !== "batch" && name !== "epoch") {
    renderRun(slot);
    updateButtons();
    renderAnalysisLink();
  }
}

/** "Analyse A vs B" once both runs of the group have ended and both analyses are stored. */
function renderAnalysisLink() {
  const link = $("#analyse"), note = $("#analyse-note");
  const { a, b } = state.runs;
  const ended = a && b && ENDED.includes(a.status) && ENDED.includes(b.status);
  const ready = ended && a.analysis === "ready" && b.analysis === "ready";
  link.hidden = !ready;
  if (ready) link.href = `/analysis?a=${encodeURIComponent(a.id)}&b=${encodeURIComponent(b.id)}`;
  else link.removeAttribute("href");
  let text = "";
  if (ended && !ready) {
    const failed = SLOTS.filter((s) => state.runs[s].analysis === "failed").map((s) => s.toUpperCase());
    // a finished run is always analysed; a stopped one only if it had saved weights
    const waiting = SLOTS.some((s) => state.runs[s].analysis === "pending" || (state.runs[s].status === "finished" && !state.runs[s].analysis));
    if (failed.length) text = `The analysis of ${failed.join(" and ")} failed.`;
    else if (waiting) text = "Analysing both runs on the full test set…";
  }
  note.textContent = text;
}

function scheduleSync() {
  if (state.syncing) return;
  state.syncing = setTimeout(async () => {
    let listed = [], failed = false;
    try {
      listed = (await api.listRuns()).runs;
      const ids = newestGroup(listed).map((r) => r.id);
      const shown = SLOTS.map((s) => state.runs[s]?.id).filter(Boolean);
      if (ids.length && ids.join() !== shown.join()) adopt(await Promise.all(ids.map(api.getRun)));
    } catch (err) {
      say(err.message);
      failed = true;
    }
    state.syncing = null;
    // a listed run that is not the newest pair stays off the page; its events are dropped from now on
    for (const run of listed) {
      state.known.add(run.id);
      state.buffered.delete(run.id);
    }
    if (!failed && state.buffered.size) scheduleSync(); // runs newer than the listing
  }, 150);
}

function xOf(kind, p) {
  if (state.xAxis === "samples") return p.samples_seen;
  return kind === "batch" ? p.epoch - 1 + p.step / p.steps : p.epoch;
}

function addBatch(slot, p) {
  const run = state.runs[slot];
  const last = run.batch[run.batch.length - 1];
  if (last && p.samples_seen <= last.samples_seen) return; // already have it (replayed)
  run.batch.push(p);
  if (run.status === "queued") run.status = "running";
  charts.loss.addPoint(slot, "batch", xOf("batch", p), p.loss);
  charts.acc.addPoint(slot, "batch", xOf("batch", p), p.acc);
  scheduleRender(slot);
}

function addEpoch(slot, p, live) {
  const run = state.runs[slot];
  const last = run.epoch[run.epoch.length - 1];
  if (last && p.epoch <= last.epoch) return;
  run.epoch.push(p);
  charts.loss.addPoint(slot, "epoch", xOf("epoch", p), p.test_loss);
  charts.acc.addPoint(slot, "epoch", xOf("epoch", p), p.test_acc);
  logEpoch(slot, p);
  if (live) scheduleGrid();
}

function replayCharts() {
  for (const chart of Object.values(charts)) chart.reset();
  for (const slot of SLOTS) {
    const run = state.runs[slot];
    if (!run) continue;
    for (const p of run.batch) {
      charts.loss.addPoint(slot, "batch", xOf("batch", p), p.loss);
      charts.acc.addPoint(slot, "batch", xOf("batch", p), p.acc);
    }
    for (const p of run.epoch) {
      charts.loss.addPoint(slot, "epoch", xOf("epoch", p), p.test_loss);
      charts.acc.addPoint(slot, "epoch", xOf("epoch", p), p.test_acc);
    }
  }
}

// ---- progress and log ------------------------------------------------------------------------

const renderPending = new Set();
function scheduleRender(slot) {
  if (!renderPending.size) requestAnimationFrame(() => {
    for (const s of renderPending) renderRun(s);
    renderPending.clear();
  });
  renderPending.add(slot);
}

function renderRun(slot) {
  const panel = panels[slot], run = state.runs[slot];
  if (!run) {
    panel.run.dataset.status = "idle";
    panel.status.textContent = "no run yet";
    panel.progress.value = 0;
    panel.progressText.textContent = "";
    return;
  }
  panel.run.dataset.status = run.status;
  panel.run.dataset.runId = run.id;
  panel.status.textContent = `${run.status} · run ${run.id}`;
  const epochs = run.info.epochs ?? run.config.epochs;
  const perEpoch = run.info.train_samples ?? run.config.train_samples ?? 60000;
  const total = epochs * perEpoch;
  const p = run.batch[run.batch.length - 1];
  const seen = p?.samples_seen ?? 0;
  panel.progress.value = run.status === "finished" ? 1 : Math.min(1, seen / total);
  const ended = ENDED.includes(run.status);
  panel.progress.setAttribute("aria-valuetext", `${run.status}, ${Math.round(panel.progress.value * 100)}%`);
  if (run.status === "queued") panel.progressText.textContent = run.config && "waiting for its worker…";
  else if (!p) panel.progressText.textContent = run.status === "running" ? "loading data…" : ended ? `${run.status} before its first batch` : "";
  else {
    // running: the epoch-to-date rate the server sends; ended: the whole run's average
    const trained = run.info.samples_seen ?? p.samples_seen, secs = run.info.train_seconds ?? p.train_seconds;
    const rate = ended && secs > 0 ? trained / secs : p.samples_per_s;
    let left = "";
    if (run.status === "running") {
      const epochsLogged = run.epoch.length, lastEvalSeconds = run.epoch.at(-1)?.eval_seconds;
      const seconds = secondsLeft({ samplesLeft: total - seen, rate, epochs, epochsLogged, lastEvalSeconds, testSamples: run.info.test_samples });
      left = ` · ${clock(seconds)} left`;
    }
    const parts = [`epoch ${p.epoch}/${epochs}`, `batch ${p.step}/${p.steps}`, `${Math.round(rate).toLocaleString("en-US")} samples/s${ended ? " on average" : ""}`];
    if (run.status === "stopped" || run.status === "failed") parts.unshift(`${run.status} at ${Math.round(panel.progress.value * 100)}%`);
    if (run.status === "finished" && secs) parts.push(`trained in ${secs.toFixed(1)} s`);
    panel.progressText.textContent = parts.join(" · ") + left;
  }
}

function pct(x) {
  return `${(x * 100).toFixed(2)}%`;
}

function logEpoch(slot, p) {
  const run = state.runs[slot];
  const item = document.createElement("li");
  const epochs = run.info.epochs ?? run.config.epochs;
  item.textContent = `epoch ${p.epoch}/${epochs}: test acc ${pct(p.test_acc)}, loss ${p.test_loss.toFixed(4)} · train acc ${pct(p.train_acc)}, loss ${p.train_loss.toFixed(4)} · ${p.seconds.toFixed(1)} s`;
  const log = panels[slot].log;
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(item);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// ---- drawing and predictions ------------------------------------------------------------------

/** Runs whose weights the server can use: it has reported training, or an epoch. */
function predictable() {
  return SLOTS.filter((s) => {
    const run = state.runs[s];
    if (!run || performance.now() < (run.retryAt ?? 0)) return false;
    return run.epoch.length > 0 || (run.batch.length > 0 && run.status !== "queued");
  });
}

const predictState = { busy: false, again: false, last: 0 };
let drawn = null; // the current 28x28 image, or null when the pad is empty

function onDraw(final) {
  drawn = pad.empty ? null : canvasToMnist(pad.canvas);
  if (drawn) paintImage($("#preview"), drawn);
  requestPredict(final);
}

function requestPredict(now = false) {
  if (!drawn) return;
  if (predictState.busy) {
    predictState.again = true;
    return;
  }
  const wait = now ? 0 : Math.max(0, 120 - (performance.now() - predictState.last)); // ~8 a second at most
  predictState.busy = true;
  setTimeout(runPredict, wait);
}

async function runPredict() {
  predictState.last = performance.now();
  const image = drawn;
  const slots = predictable();
  const runs = slots.map((slot) => state.runs[slot]);
  if (!SLOTS.some((slot) => state.runs[slot]?.batch.length)) {
    $("#verdict").textContent = "Train a model first; then its answer shows here.";
  }
  const answers = await Promise.all(runs.map((run) => api.predict(image, [run.id]).then((a) => a.predictions[0], (err) => err)));
  const labels = {};
  slots.forEach((slot, i) => {
    if (!drawn) return; // cleared meanwhile
    const answer = answers[i];
    if (answer instanceof Error) {
      showProbs(slot, null, answer.message);
      // 409: its first weight snapshot is a second or two away; ask again after that
      if (answer.status === 409) {
        runs[i].retryAt = performance.now() + 2000;
        setTimeout(() => requestPredict(true), 2100);
      }
    } else {
      showProbs(slot, answer.probs);
      labels[slot] = answer.label;
    }
  });
  if (drawn && slots.length) showVerdict(labels);
  predictState.busy = false;
  if (predictState.again) {
    predictState.again = false;
    requestPredict();
  }
}

function buildProbs(slot) {
  const box = $(`#probs-${slot}`);
  const title = document.createElement("p");
  title.className = "probs-title";
  title.textContent = `Model ${slot.toUpperCase()}`;
  box.append(title);
  for (let d = 0; d < 10; d++) {
    const row = document.createElement("div");
    row.className = "prob-row";
    row.innerHTML = `<span class="digit">${d}</span><span class="bar"><i></i></span><span class="value"></span><span class="mark" aria-hidden="true"></span>`;
    row.dataset.class = String(d);
    box.append(row);
  }
  const note = document.createElement("p");
  note.className = "probs-note";
  box.append(note);
}

function showProbs(slot, probs, message = "") {
  const box = $(`#probs-${slot}`);
  const rows = box.querySelectorAll(".prob-row");
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  rows.forEach((row, d) => {
    const p = probs ? probs[d] : 0;
    $("i", row).style.width = `${(p * 100).toFixed(1)}%`;
    $(".value", row).textContent = probs ? `${(p * 100).toFixed(1)}%` : "";
    row.classList.toggle("best", d === best);
  });
  $(".probs-note", box).textContent = message;
  if (probs) box.dataset.label = String(best);
  else delete box.dataset.label;
}

function showVerdict(labels) {
  const verdict = $("#verdict");
  for (const slot of SLOTS) {
    for (const row of $(`#probs-${slot}`).querySelectorAll(".prob-row")) {
      row.classList.remove("disagree");
      $(".mark", row).textContent = "";
    }
  }
  const { a, b } = labels;
  const name = (slot, label) => className(datasetOf(slot), label);
  verdict.classList.remove("disagree");
  if (a === undefined || b === undefined) {
    const one = a ?? b;
    if (one !== undefined) verdict.textContent = `Model ${a !== undefined ? "A" : "B"} reads ${name(a !== undefined ? "a" : "b", one)}.`;
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

/** The data set a slot's run was trained on (MNIST when the slot is empty). */
function datasetOf(slot) {
  return state.runs[slot]?.config?.dataset ?? "mnist";
}

/** Names the probability rows after the shown runs' classes, and says when they know clothing, not digits. */
function renderClasses() {
  for (const slot of SLOTS) {
    const box = $(`#probs-${slot}`), dataset = datasetOf(slot);
    box.dataset.dataset = dataset;
    box.querySelectorAll(".prob-row").forEach((row, d) => ($(".digit", row).textContent = className(dataset, d)));
  }
  const fashion = SLOTS.filter((s) => state.runs[s] && isFashion(datasetOf(s)));
  const note = $("#draw-note");
  note.hidden = fashion.length === 0;
  const who = fashion.length === 2 ? "Both models were" : `Model ${fashion[0]?.toUpperCase()} was`;
  note.textContent = fashion.length ? `${who} trained on clothing (Fashion-MNIST), so ${fashion.length === 2 ? "they read" : "it reads"} a drawing as one of ten kinds of clothing: try a trouser, a bag or a shoe.` : "";
}

function clearPad() {
  pad.clear();
  drawn = null;
  paintImage($("#preview"), Array.from({ length: 28 }, () => new Array(28).fill(0)));
  for (const slot of SLOTS) showProbs(slot, null);
  showVerdict({});
  $("#verdict").textContent = "Draw a digit to see both answers.";
}

// ---- the grid of 16 test images -----------------------------------------------------------------

let gridTimer = null, gridBusy = false, gridAgain = false;
function scheduleGrid() {
  clearTimeout(gridTimer);
  gridTimer = setTimeout(refreshGrid, 300);
}

async function loadSamples(dataset) {
  if (state.samples?.dataset === dataset) return state.samples;
  const answer = await api.samples(dataset, GRID_COUNT);
  state.samples = { dataset, images: answer.images, labels: answer.labels };
  const grid = $("#grid");
  grid.replaceChildren();
  grid.dataset.dataset = dataset;
  answer.images.forEach((image, i) => {
    const cell = document.createElement("figure");
    cell.className = "cell";
    cell.innerHTML = `<canvas width="28" height="28"></canvas><figcaption><span class="truth"></span><span class="guess" data-slot="a"></span><span class="guess" data-slot="b"></span></figcaption>`;
    $("canvas", cell).setAttribute("aria-label", `test image ${i + 1}, ${aClass(dataset, answer.labels[i])}`);
    $(".truth", cell).textContent = className(dataset, answer.labels[i]);
    paintImage($("canvas", cell), image);
    grid.append(cell);
  });
  return state.samples;
}

async function refreshGrid() {
  if (gridBusy) {
    gridAgain = true;
    return;
  }
  gridBusy = true;
  try {
    const ready = (run) => run && (run.epoch.length > 0 || run.status === "finished");
    // the images of the first model that can answer, else of the first shown; a run that never trained says nothing
    const shown = SLOTS.map((s) => state.runs[s]);
    const dataset = (shown.find(ready) ?? shown.find(Boolean))?.config.dataset ?? "mnist";
    const samples = await loadSamples(dataset);
    $("#grid-message").textContent = "";
    const cells = $("#grid").querySelectorAll(".cell");
    for (const slot of SLOTS) {
      const run = state.runs[slot];
      const guesses = ready(run) ? await predictAll(samples.images, run.id) : null;
      let right = 0;
      cells.forEach((cell, i) => {
        const span = $(`.guess[data-slot=${slot}]`, cell);
        span.classList.remove("right", "wrong");
        span.textContent = guesses ? `${slot.toUpperCase()}: ${className(run.config.dataset, guesses[i])}` : "";
        if (guesses) {
          const ok = guesses[i] === samples.labels[i];
          right += ok;
          span.classList.add(ok ? "right" : "wrong");
        }
      });
      $("#grid").dataset[`right${slot.toUpperCase()}`] = guesses ? String(right) : "";
    }
  } catch (err) {
    $("#grid-message").textContent = `Test images unavailable: ${err.message}`;
  } finally {
    gridBusy = false;
    if (gridAgain) {
      gridAgain = false;
      scheduleGrid();
    }
  }
}

/** Labels for each image from one run; a few requests at a time. */
async function predictAll(images, runId) {
  const out = new Array(images.length);
  let next = 0;
  const worker = async () => {
    while (next < images.length) {
      const i = next++;
      out[i] = (await api.predict(images[i], [runId])).predictions[0].label;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

// ---- start -------------------------------------------------------------------------------------

function start() {
  for (const slot of SLOTS) {
    buildPanel(slot);
    buildProbs(slot);
  }
  charts.loss = new CurveChart($("#loss-chart"), { yTitle: "loss" });
  charts.acc = new CurveChart($("#acc-chart"), { yTitle: "accuracy (%)", percent: true });
  pad = new DrawPad($("#pad"), onDraw);
  clearPad();

  $("#train").addEventListener("click", train);
  $("#stop").addEventListener("click", () => stopRuns(SLOTS));
  $("#clear").addEventListener("click", clearPad);
  $("#preset-pair").addEventListener("click", () => {
    setValues("a", PRESETS.classic.values);
    setValues("b", PRESETS.small.values);
  });
  $("#x-axis").addEventListener("change", (e) => {
    state.xAxis = e.target.value;
    for (const chart of Object.values(charts)) chart.setXTitle(state.xAxis === "samples" ? "samples seen" : "epochs");
    replayCharts();
  });
  $("#acc-zoom").addEventListener("change", (e) => charts.acc.setYRange(e.target.checked ? [90, 100] : null));

  const handlers = {
    history: ({ runs }) => {
      for (const r of runs) state.known.add(r.id);
      adopt(newestGroup(runs));
      document.body.dataset.ready = "true";
    },
    runs_created: onRunsCreated,
    request_failed: (p) => say(p.error),
  };
  for (const name of ["run_started", "batch", "epoch", "run_finished", "run_stopped", "run_failed", "analysis_ready", "analysis_failed"]) {
    handlers[name] = (payload) => apply(name, payload);
  }
  connect(handlers, (text) => {
    $("#connection").textContent = text;
    $("#connection").dataset.state = text;
  });
}

start();
