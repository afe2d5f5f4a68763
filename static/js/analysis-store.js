// The analysis page's state and the actions that change it: fetches answers, drops stale ones and
// notifies subscribers. Never touches the DOM and never calls a view; views subscribe (or watch())
// and redraw from what they are handed. Each change replaces the slices it touches, so a view can
// tell by identity whether its part changed.

import { activations, call, compareRuns, getAnalysis, getCell, getGradients, getRun, listRuns, samples } from "./api.js";

export const SLOTS = ["a", "b"];
const POLL_MS = 2000; // while a chosen run is still being analysed
const SAMPLES = 16; // test images to pick the feature maps' input from

const groupCall = (group, what) => call("GET", `/api/groups/${encodeURIComponent(group)}/${what}`);

/** The group trained with repeats that both runs of the pair belong to, else null. */
export function groupOf({ runs, ids }) {
  const a = runs?.get(ids.a), b = runs?.get(ids.b);
  return a && b && a.group && a.group === b.group && a.repeats > 1 ? a.group : null;
}

/** A slot's run to show for a group: its first seed with an analysis, else its first seed. */
function leadOf(members, slot) {
  const seeds = members.filter((r) => r.slot === slot).sort((x, y) => x.repeat - y.repeat);
  return (seeds.find((r) => r.analysis === "ready") ?? seeds[0])?.id ?? null;
}

const sameShape = (pixels, [c, h, w]) => pixels.length === c && pixels[0].length === h && pixels[0][0].length === w;

function sampleImage({ images, labels, classes }, i) {
  return { pixels: images[i], source: `test image ${i} (${aName(classes[labels[i]] ?? String(labels[i]))})`, sample: i };
}

/** The data set of the run in a slot (MNIST when unknown); A and B are compared on one. */
export function datasetOf({ runs, ids }, slot) {
  const other = slot === "a" ? "b" : "a";
  return runs?.get(ids[slot])?.config.dataset ?? runs?.get(ids[other])?.config.dataset ?? "mnist";
}

/** The analysis of the run in a slot, else of the other run (null before either is in). */
function resultOf({ pair }, slot) {
  return pair?.results[slot] ?? pair?.results[slot === "a" ? "b" : "a"] ?? null;
}

/** The [channels, height, width] images of the pair have (from its analyses, else the test images loaded). */
export const shapeOf = (state, slot = "a") => resultOf(state, slot)?.shape ?? state.samples?.shape ?? null;

/** A class name shorter for tight spots (matrix axes): "T-shirt/top" -> "T-shirt", "Ankle boot" -> "Boot". */
export function shortName(name) {
  const first = name.split("/")[0];
  const words = first.split(/\s+/);
  if (first.length <= 8 || words.length < 2) return first;
  const last = words.at(-1);
  return first[0] === first[0].toUpperCase() ? last[0].toUpperCase() + last.slice(1) : last;
}

/** The class names of the run in a slot, from its analysis: {names, short} (short ones for axes). */
export function classesOf(state, slot) {
  const names = resultOf(state, slot)?.classes ?? [];
  return { names, short: names.map(shortName) };
}

export const nameOf = (state, slot, label) => resultOf(state, slot)?.classes?.[label] ?? String(label);

/** For sentences like "test image 4, a 7": "a 7", "an 8" for digits; a word stands alone ("Ankle boot"). */
export function aName(name) {
  if (!/^\d+$/.test(name)) return name;
  return `${/^(8\d*|11|18)$/.test(name) ? "an" : "a"} ${name}`;
}

/** Promise.allSettled answers by slot: {ok: true, value} or {ok: false, error}. */
function bySlot(settled, slots = SLOTS) {
  const out = {};
  slots.forEach((slot, i) => {
    const x = settled[i];
    out[slot] = x.status === "fulfilled" ? { ok: true, value: x.value } : { ok: false, error: x.reason };
  });
  return out;
}

/**
 * Calls draw(state) on the first change and then whenever one of the values pick(state) returns
 * (an array) is not identical to last time, so a view redraws only when its slices changed.
 */
export function watch(store, pick, draw) {
  let last = null;
  store.subscribe((state) => {
    const now = pick(state);
    if (last && now.every((v, i) => v === last[i])) return;
    last = now;
    draw(state);
  });
}

export function createStore() {
  let state = {
    runs: null, // id -> run summary, newest first, once listed
    ids: { a: null, b: null }, // the chosen pair
    note: "", // the pickers' message line
    generation: 0, // a newer load makes older answers stale
    dataset: null, // of the pair being shown
    pair: null, // {results: {a, b} (null where missing), errors: {slot: ApiError} for those that failed}
    gradients: null, // {a, b}: bySlot answers
    compare: null, // {pending} | {needsBoth} | {value} | {error}: the "only one got it right" pair
    cell: null, // {kind: a|b|diff, t, p, answers: null while loading, else bySlot}
    samples: null, // {dataset, images (N, C, H, W), labels, classes, shape}: the test images to pick from
    samplesError: null,
    image: null, // {pixels (C, H, W), source (words), sample: index in samples or null, drawn}: the maps' input
    maps: null, // {loading, answers: bySlot or null}: feature maps of image
    group: null, // {id, seeds: GET /api/groups/<id>/seeds or null, error, verdict: {waiting: n} | {value} | {error}}
    ready: null, // body[data-ready]: "empty" | "error" | "partial" | "full", null while loading
  };
  const subscribers = [];
  let poll = null;

  const get = () => state;
  const stale = (generation) => generation !== state.generation;

  function set(patch) {
    state = { ...state, ...patch };
    for (const fn of subscribers) fn(state);
  }

  function subscribe(fn) {
    subscribers.push(fn);
  }

  /**
   * Lists the runs and picks the pair: wanted ({a, b} from the URL), the first seed of each model of
   * wanted.group, or the two newest analysed.
   */
  async function start(wanted) {
    let runs;
    try {
      ({ runs } = await listRuns());
    } catch (error) {
      set({ note: error.message, ready: "error" });
      return;
    }
    const ready = runs.filter((r) => r.analysis === "ready"); // newest first
    // the two newest in the order they were trained: the older is A
    const defaults = { a: ready[1]?.id ?? ready[0]?.id ?? null, b: ready[0]?.id ?? null };
    const members = wanted.group ? runs.filter((r) => r.group === wanted.group) : [];
    const leads = { a: leadOf(members, 0), b: leadOf(members, 1) };
    const ids = { a: wanted.a || leads.a || defaults.a, b: wanted.b || leads.b || defaults.b };
    let note = "";
    if (wanted.group && !members.length) {
      note = `There is no group ${wanted.group}; showing the newest runs instead.`;
    } else if (!ready.length && !wanted.a && !wanted.b) {
      note = "No run has an analysis yet: train two models on the main page and come back when they have ended.";
    } else if (ready.length < 2 && !(wanted.a && wanted.b)) {
      note = "Only one run has an analysis so far; both pickers show it until a second run ends.";
    }
    set({ runs: new Map(runs.map((r) => [r.id, r])), ids, note });
    await load();
  }

  function choose(ids) {
    set({ ids: { a: ids.a || null, b: ids.b || null }, note: "" }); // start()'s note was about its own pick
    load();
  }

  /** Fetches everything about the chosen pair; body[data-ready] follows once all of it is in. */
  async function load() {
    const generation = state.generation + 1;
    clearTimeout(poll);
    const { a, b } = state.ids;
    if (!a || !b) {
      set({ generation, ready: "empty" });
      return;
    }
    const group = groupOf(state);
    set({ generation, ready: null, dataset: datasetOf(state, "a"), cell: null, group: group && { id: group } });
    const settled = await Promise.allSettled([getAnalysis(a), getAnalysis(b)]);
    if (stale(generation)) return;
    const results = {}, errors = {};
    SLOTS.forEach((slot, i) => {
      if (settled[i].status === "fulfilled") results[slot] = settled[i].value;
      else errors[slot] = settled[i].reason;
    });
    const both = Boolean(results.a && results.b);
    set({ pair: { results: { a: results.a ?? null, b: results.b ?? null }, errors }, compare: both ? { pending: true } : { needsBoth: true } });
    const pending = SLOTS.filter((slot) => errors[slot]?.status === 409);
    if (pending.length) waitFor(generation, pending.map((slot) => state.ids[slot]));

    const parts = [loadGradients(generation), both && loadCompare(generation), loadSamples(generation)];
    await Promise.allSettled([...parts, group && loadGroup(generation, group)]);
    if (stale(generation)) return;
    await showMaps();
    if (stale(generation)) return;
    set({ ready: Object.keys(errors).length ? "partial" : "full" });
  }

  /** While a chosen run is still running or being analysed, look again every few seconds. */
  function waitFor(generation, ids) {
    poll = setTimeout(async () => {
      if (stale(generation)) return;
      try {
        const runs = await Promise.all(ids.map((id) => getRun(id)));
        if (runs.every((r) => r.analysis === "ready")) return void load();
        if (runs.some((r) => r.analysis === "failed" || r.status === "failed")) return;
      } catch {
        return; // the error sentence is already on the page
      }
      waitFor(generation, ids);
    }, POLL_MS);
  }

  /**
   * The group's seeds, then its verdict once no run of it still trains or waits for its analysis (the
   * seeds answer counts them); until then the seeds are asked again every few seconds. Asking the verdict
   * only then spares the console a 409 on every look.
   */
  async function loadGroup(generation, id) {
    let seeds = state.group?.seeds ?? null, error = null, verdict;
    try {
      seeds = await groupCall(id, "seeds");
    } catch (e) {
      error = e;
    }
    if (stale(generation)) return;
    const waiting = !error && seeds.waiting > 0;
    if (error) verdict = { error };
    else if (waiting) verdict = { waiting: seeds.waiting };
    else {
      try {
        verdict = { value: await groupCall(id, "verdict") };
      } catch (e) {
        verdict = { error: e };
      }
      if (stale(generation)) return;
    }
    set({ group: { id, seeds, error, verdict } });
    if (waiting) setTimeout(() => !stale(generation) && loadGroup(generation, id), POLL_MS);
  }

  async function loadGradients(generation) {
    const settled = await Promise.allSettled(SLOTS.map((s) => getGradients(state.ids[s])));
    if (!stale(generation)) set({ gradients: bySlot(settled) });
  }

  async function loadCompare(generation) {
    try {
      const value = await compareRuns(state.ids.a, state.ids.b);
      if (!stale(generation)) set({ compare: { value } });
    } catch (error) {
      if (!stale(generation)) set({ compare: { error } });
    }
  }

  /** The test images to pick from, once per data set; the first becomes the input unless one of their shape is. */
  async function loadSamples(generation) {
    const dataset = datasetOf(state, "a");
    const size = (state.runs?.get(state.ids.a) ?? state.runs?.get(state.ids.b))?.config.image_size ?? null;
    if (state.samples?.dataset === dataset && state.samples.size === size) return;
    let data;
    try {
      data = await samples(dataset, SAMPLES, "test", size); // at the side the runs trained at (a folder's)
    } catch (error) {
      set({ samplesError: error });
      return;
    }
    if (stale(generation)) return;
    const loaded = { dataset, size, images: data.images, labels: data.labels, classes: data.classes, shape: data.shape };
    // a drawing stays the input where it fits; a test image of another data set gives way to this one's first
    const kept = state.image?.drawn && sameShape(state.image.pixels, data.shape);
    const image = kept ? state.image : sampleImage(loaded, 0);
    set({ samples: loaded, samplesError: null, image });
  }

  /** Feature maps of both runs for the current image; a newer request makes older answers stale. */
  async function showMaps() {
    if (!state.image) return;
    const maps = { loading: true, answers: state.maps?.answers ?? null }; // the old maps stay meanwhile
    set({ maps });
    const { pixels } = state.image;
    const settled = await Promise.allSettled(
      SLOTS.map((s) => (state.ids[s] ? activations(state.ids[s], pixels) : Promise.reject(new Error("no run chosen")))),
    );
    if (state.maps === maps) set({ maps: { loading: false, answers: bySlot(settled) } });
  }

  function useSample(i) {
    set({ image: sampleImage(state.samples, i) });
    showMaps();
  }

  /** A drawing on the pad: 28 rows of 28 grey values. */
  function useDrawing(rows) {
    set({ image: { pixels: [rows], source: "your drawing", sample: null, drawn: true } });
    showMaps();
  }

  /** The test images of one confusion cell: kind "a" or "b", or "diff" for both runs. */
  async function pickCell(kind, t, p) {
    const cell = { kind, t, p, answers: null };
    set({ cell });
    const slots = kind === "diff" ? SLOTS : [kind];
    const settled = await Promise.allSettled(slots.map((slot) => getCell(state.ids[slot], t, p)));
    if (state.cell === cell) set({ cell: { ...cell, answers: bySlot(settled, slots) } });
  }

  const closeCell = () => set({ cell: null });

  return { get, subscribe, start, choose, useSample, useDrawing, pickCell, closeCell };
}
