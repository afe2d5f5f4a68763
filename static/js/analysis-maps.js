// Views of the feature maps section: the drawing pad, the test images to pick from, the 28x28
// preview of the input both runs receive, and each run's maps per conv layer.

import { canvasToMnist, DrawPad, paintImage } from "./canvas.js";
import { $, el } from "./dom.js";
import { aClass } from "./classes.js";
import { paintMap } from "./analysis-heatmap.js";
import { message, showErrors } from "./analysis-parts.js";
import { SLOTS, watch } from "./analysis-store.js";

export function mountMaps(store) {
  const section = $(".features"), samples = $("#maps-samples"), preview = $("#maps-preview");
  const pad = new DrawPad($("#maps-pad"), (final) => {
    const image = canvasToMnist($("#maps-pad"));
    paintImage(preview, image); // live while drawing; the store hears of the stroke at its end
    if (final) store.useDrawing(image);
  });
  $("#maps-clear").addEventListener("click", () => pad.clear());

  watch(store, (s) => [s.samples], ({ samples: loaded }) => {
    if (!loaded) return;
    const { dataset, images, labels } = loaded;
    samples.replaceChildren(
      ...images.map((image, i) => {
        const canvas = el("canvas", { width: 28, height: 28 });
        paintImage(canvas, image);
        const what = aClass(dataset, labels[i]);
        const button = el("button", { type: "button", class: "sample", title: `test image ${i}, ${what}`, "aria-label": `test image ${i}, ${what}` }, canvas);
        button.addEventListener("click", () => {
          pad.clear();
          store.useSample(i);
        });
        return button;
      }),
    );
  });
  watch(store, (s) => [s.samplesError], ({ samplesError }) => {
    if (samplesError) message(section, `The test images could not be loaded: ${samplesError.message}`);
  });

  watch(store, (s) => [s.image], ({ image }) => {
    if (!image) return;
    [...samples.children].forEach((b, i) => b.setAttribute("aria-pressed", String(i === image.sample)));
    paintImage(preview, image.pixels);
    $("#maps-source").textContent = `What both models receive: ${image.source}`;
  });

  watch(store, (s) => [s.maps], ({ maps }) => {
    if (maps) section.dataset.state = maps.loading ? "loading" : "shown";
  });
  watch(store, (s) => [s.maps?.answers], ({ maps, ids }) => {
    if (!maps?.answers) return;
    for (const slot of SLOTS) {
      const group = $(`.maps-model[data-slot="${slot}"]`), box = $(`#maps-${slot}`);
      const answer = maps.answers[slot];
      box.replaceChildren();
      if (!answer.ok) {
        showErrors(group, ids, { [slot]: answer.error });
        continue;
      }
      message(group, "");
      for (const layer of answer.value.layers) box.append(layerMaps(layer));
    }
  });
}

/** One layer's channels as small canvases, with a readout of the hovered channel's range. */
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
