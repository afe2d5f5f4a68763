// The loss and accuracy charts of the shown runs, with the x-axis switch and the accuracy zoom.
// New points are added as they come; a reset or an axis switch redraws every point from the store.
// With a validation share a run also draws its validation line, and the epoch it keeps is starred.
// A group trained over seeds draws each model's per-epoch test mean over its seeds with a shaded band
// (min–max, or mean ± one standard deviation: the user picks), error bars on the test accuracy's markers,
// the validation mean, and, on request, every seed's own test line, thin. The per-batch training lines stay
// one per seed, thin: batches are sampled by time, so the seeds' points fall at different steps.
import { CurveChart, MAX_SEEDS } from "./charts.js";
import { $ } from "./dom.js";
import { Spread } from "./seeds.js";
import { SLOTS } from "./store.js";

// what each chart draws of a metric point: the training batch's mean, or the epoch's test (and validation) result
const Y = {
  loss: { batch: (p) => p.loss, epoch: (p) => p.test_loss, val: (p) => p.val_loss },
  acc: { batch: (p) => p.acc, epoch: (p) => p.test_acc, val: (p) => p.val_acc },
};
const SERIES = { batch: ["batch"], epoch: ["epoch", "val"] }; // the series each event kind feeds
const BANDS = { range: "min–max", sd: "mean ± 1 sd" };

/** The epoch a run keeps (chosen by validation; null without a share): its end's word, else the last epoch's. */
export const bestEpoch = (run) => run.info.best_epoch ?? run.epoch.at(-1)?.best_epoch ?? null;

export function mountCurves(store) {
  const charts = {
    loss: new CurveChart($("#loss-chart"), { yTitle: "loss" }),
    acc: new CurveChart($("#acc-chart"), { yTitle: "accuracy (%)", percent: true, whiskers: true }),
  };
  const xOf = (kind, p) => {
    if (store.xAxis === "samples") return p.samples_seen;
    return kind === "batch" ? p.epoch - 1 + p.step / p.steps : p.epoch;
  };

  // ---- one seed per slot: each point added as it comes -------------------------------------------
  const add = (slot, kind, from) => {
    for (const p of store.runs[slot][kind].slice(from)) {
      for (const [name, chart] of Object.entries(charts)) {
        for (const series of SERIES[kind]) {
          const y = Y[name][series](p);
          if (y != null) chart.addPoint(slot, series, xOf(kind, p), y); // null: no validation share
        }
      }
    }
  };
  const mark = (slot) => {
    const run = store.runs[slot], best = run ? bestEpoch(run) : null;
    const p = best == null ? null : run.epoch.find((e) => e.epoch === best);
    for (const chart of Object.values(charts)) chart.setMark(slot, p ? xOf("epoch", p) : null, p ? String(best) : "");
  };

  // ---- several seeds: per slot and chart a Spread per line, fed as any seed adds points -------------
  // slot -> chart name -> {epoch, val: Spread, seeds: [test points per seed], batches: [training points per
  // seed]}, seeds by position in the slot
  let spreads = null;
  const grouped = () => store.repeats > 1;
  const fresh = () => {
    const one = (chart) => {
      const spread = () => new Spread(store.band, chart.percent ? 100 : 1);
      const lines = () => Array.from({ length: MAX_SEEDS }, () => []);
      return { epoch: spread(), val: spread(), seeds: lines(), batches: lines() };
    };
    return Object.fromEntries(SLOTS.map((s) => [s, Object.fromEntries(Object.entries(charts).map(([n, c]) => [n, one(c)]))]));
  };
  const feed = (slot, run, kind, from) => {
    const position = store.seeds[slot].indexOf(run);
    for (const p of run[kind].slice(from)) {
      for (const [name, chart] of Object.entries(charts)) {
        const own = spreads[slot][name];
        for (const series of SERIES[kind]) {
          const y = Y[name][series](p);
          if (y == null || position >= MAX_SEEDS) continue;
          const point = { x: xOf(kind, p), y: y * (chart.percent ? 100 : 1) };
          if (series === "batch") own.batches[position].push(point);
          else own[series].add(p.epoch, point.x, y);
          if (series === "epoch") own.seeds[position].push(point);
        }
        chart.schedule();
      }
    }
    if (kind === "epoch") {
      bands();
      labels(); // "mean of up to n seeds" until every seed has reached this epoch
    }
  };
  /** Hands each chart the spreads' arrays (they grow in place) and, when asked for, the seeds' own lines. */
  const hand = (slot) => {
    for (const [name, chart] of Object.entries(charts)) {
      const own = spreads[slot][name];
      for (const series of ["epoch", "val"]) chart.setSeries(slot, series, own[series].mean);
      own.batches.forEach((line, k) => chart.setSeries(slot, k ? `b${k}` : "batch", line));
      chart.setSeries(slot, "lo", own.epoch.lo);
      chart.setSeries(slot, "hi", own.epoch.hi);
      own.seeds.forEach((line, k) => chart.setSeries(slot, `s${k}`, store.seedLines ? line : []));
    }
  };
  const bands = () => {
    for (const [name, chart] of Object.entries(charts)) {
      const covers = {}, points = {};
      for (const slot of SLOTS) {
        covers[slot] = spreads ? spreads[slot][name].epoch.seeds() : 0;
        points[slot] = spreads ? spreads[slot][name].epoch.spread() : 0;
      }
      chart.setBand(BANDS[store.band], covers, points);
    }
  };
  const labels = () => {
    for (const slot of SLOTS) {
      const up = slot.toUpperCase(), n = store.seeds[slot].length;
      // while some seeds are behind (or one was stopped), the last epochs' means are over fewer of them
      const epochs = store.seeds[slot].map((run) => run.epoch.length);
      const over = epochs.every((e) => e === epochs[0]) ? `${n}` : `up to ${n}`;
      const text = grouped()
        ? { batch: `${up} train (each seed)`, epoch: `${up} test (mean of ${over} seeds)`, val: `${up} validation (mean)`, s0: `${up} test (each seed)` }
        : { batch: `${up} train`, epoch: `${up} test`, val: `${up} validation` };
      for (const chart of Object.values(charts)) for (const [kind, label] of Object.entries(text)) chart.setLabel(slot, kind, label);
    }
    $("#seed-tools").hidden = !grouped();
    $("#legend-note").hidden = grouped();
    $("#seed-note").hidden = !grouped();
  };

  const redraw = () => {
    for (const chart of Object.values(charts)) chart.reset();
    spreads = grouped() ? fresh() : null;
    for (const slot of SLOTS) {
      if (spreads) {
        for (const run of store.seeds[slot]) for (const kind of ["batch", "epoch"]) feed(slot, run, kind, 0);
        hand(slot);
        for (const chart of Object.values(charts)) chart.setMark(slot, null, "");
      } else {
        if (store.runs[slot]) {
          add(slot, "batch", 0);
          add(slot, "epoch", 0);
        }
        mark(slot);
      }
    }
    bands();
    labels();
  };

  $("#x-axis").addEventListener("change", (e) => store.setXAxis(e.target.value));
  $("#acc-zoom").addEventListener("change", (e) => charts.acc.setYRange(e.target.checked ? [90, 100] : null));
  $("#band").addEventListener("change", (e) => store.setSeedView({ band: e.target.value }));
  $("#seed-lines").addEventListener("change", (e) => store.setSeedView({ seedLines: e.target.checked }));
  store.subscribe((change) => {
    const { kind, slot } = change;
    if (kind === "reset" || kind === "seed_view") redraw();
    else if (kind === "axis") {
      for (const chart of Object.values(charts)) chart.setXTitle(store.xAxis === "samples" ? "samples seen" : "epochs");
      redraw();
    } else if (kind === "batch" || kind === "epoch") {
      if (spreads) feed(slot, store.runs[slot], kind, change.from);
      else {
        add(slot, kind, change.from);
        if (kind === "epoch") mark(slot);
      }
    } else if (kind === "seed" && spreads && change.event !== "status") {
      const run = store.seeds[slot].find((r) => r.repeat === change.repeat);
      if (run) feed(slot, run, change.event, change.from);
    } else if (kind === "status" && !spreads) mark(slot); // run_finished names the epoch kept
  });
  redraw();
}
