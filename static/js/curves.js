// The loss and accuracy charts of the shown runs, with the x-axis switch and the accuracy zoom.
// New points are added as they come; a reset or an axis switch redraws every point from the store.
// With a validation share a run also draws its validation line, and the epoch it keeps is starred.
import { CurveChart } from "./charts.js";
import { $ } from "./dom.js";
import { SLOTS } from "./store.js";

// what each chart draws of a metric point: the training batch's mean, or the epoch's test (and validation) result
const Y = {
  loss: { batch: (p) => p.loss, epoch: (p) => p.test_loss, val: (p) => p.val_loss },
  acc: { batch: (p) => p.acc, epoch: (p) => p.test_acc, val: (p) => p.val_acc },
};
const SERIES = { batch: ["batch"], epoch: ["epoch", "val"] }; // the series each event kind feeds

/** The epoch a run keeps (chosen by validation; null without a share): its end's word, else the last epoch's. */
export const bestEpoch = (run) => run.info.best_epoch ?? run.epoch.at(-1)?.best_epoch ?? null;

export function mountCurves(store) {
  const charts = {
    loss: new CurveChart($("#loss-chart"), { yTitle: "loss" }),
    acc: new CurveChart($("#acc-chart"), { yTitle: "accuracy (%)", percent: true }),
  };
  const xOf = (kind, p) => {
    if (store.xAxis === "samples") return p.samples_seen;
    return kind === "batch" ? p.epoch - 1 + p.step / p.steps : p.epoch;
  };
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
  const redraw = () => {
    for (const chart of Object.values(charts)) chart.reset();
    for (const slot of SLOTS) {
      if (store.runs[slot]) {
        add(slot, "batch", 0);
        add(slot, "epoch", 0);
      }
      mark(slot);
    }
  };

  $("#x-axis").addEventListener("change", (e) => store.setXAxis(e.target.value));
  $("#acc-zoom").addEventListener("change", (e) => charts.acc.setYRange(e.target.checked ? [90, 100] : null));
  store.subscribe((change) => {
    if (change.kind === "reset") redraw();
    else if (change.kind === "axis") {
      for (const chart of Object.values(charts)) chart.setXTitle(store.xAxis === "samples" ? "samples seen" : "epochs");
      redraw();
    } else if (change.kind === "batch") add(change.slot, "batch", change.from);
    else if (change.kind === "epoch") {
      add(change.slot, "epoch", change.from);
      mark(change.slot);
    } else if (change.kind === "status") mark(change.slot); // run_finished names the epoch kept
  });
}
