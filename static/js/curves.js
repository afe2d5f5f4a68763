// The loss and accuracy charts of the shown runs, with the x-axis switch and the accuracy zoom.
// New points are added as they come; a reset or an axis switch redraws every point from the store.
import { CurveChart } from "./charts.js";
import { $ } from "./dom.js";
import { SLOTS } from "./store.js";

// what each chart draws of a metric point: the training batch's mean, or the test set's epoch result
const Y = {
  loss: { batch: (p) => p.loss, epoch: (p) => p.test_loss },
  acc: { batch: (p) => p.acc, epoch: (p) => p.test_acc },
};

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
      for (const [name, chart] of Object.entries(charts)) chart.addPoint(slot, kind, xOf(kind, p), Y[name][kind](p));
    }
  };
  const redraw = () => {
    for (const chart of Object.values(charts)) chart.reset();
    for (const slot of SLOTS) {
      if (!store.runs[slot]) continue;
      add(slot, "batch", 0);
      add(slot, "epoch", 0);
    }
  };

  $("#x-axis").addEventListener("change", (e) => store.setXAxis(e.target.value));
  $("#acc-zoom").addEventListener("change", (e) => charts.acc.setYRange(e.target.checked ? [90, 100] : null));
  store.subscribe((change) => {
    if (change.kind === "reset") redraw();
    else if (change.kind === "axis") {
      for (const chart of Object.values(charts)) chart.setXTitle(store.xAxis === "samples" ? "samples seen" : "epochs");
      redraw();
    } else if (change.kind === "batch" || change.kind === "epoch") add(change.slot, change.kind, change.from);
  });
}
