// Views of the two chart sections: calibration (a reliability diagram and ECE per run) and
// gradient flow (both runs on one y range). They redraw when the light/dark scheme changes too.

import { $ } from "./dom.js";
import { onSchemeChange } from "./theme.js";
import { clear, gradientChart, gradientRange, reliabilityChart } from "./analysis-charts.js";
import { message, showErrors } from "./analysis-parts.js";
import { SLOTS, watch } from "./analysis-store.js";

export function mountPlots(store) {
  watch(store, (s) => [s.pair], showCalibration);
  watch(store, (s) => [s.gradients], showGradients);
  // the charts' ink comes from CSS variables, read when a chart is drawn
  onSchemeChange(() => {
    showCalibration(store.get());
    showGradients(store.get());
  });
}

function showCalibration({ pair, ids }) {
  if (!pair) return;
  for (const slot of SLOTS) {
    const box = $(`.calibration [data-slot="${slot}"]`), canvas = $(`#rel-${slot}`);
    const r = pair.results[slot];
    if (!r) {
      clear(canvas);
      $(`#ece-${slot}`).textContent = "";
      showErrors(box, ids, { [slot]: pair.errors[slot] });
      continue;
    }
    message(box, "");
    $(`#ece-${slot}`).textContent = `· ECE ${r.ece.toFixed(4)}`;
    reliabilityChart(canvas, r.reliability, slot);
  }
}

function showGradients({ gradients, ids }) {
  if (!gradients) return;
  const range = gradientRange(SLOTS.filter((s) => gradients[s].ok).map((s) => gradients[s].value));
  for (const slot of SLOTS) {
    const box = $(`.gradients [data-slot="${slot}"]`), canvas = $(`#grad-${slot}`);
    const answer = gradients[slot];
    if (!answer.ok) {
      clear(canvas);
      showErrors(box, ids, { [slot]: answer.error });
      continue;
    }
    const { layers } = answer.value;
    message(box, layers.length ? "" : `${slot.toUpperCase()}: no gradients were logged (they are sampled every 50 batches).`);
    gradientChart(canvas, layers, range);
  }
}
