// Views of the feature maps section: the drawing pad (28x28 grey datasets only), the test images to
// pick from, the preview of the input both runs receive, and each run's maps per conv layer (or
// ResNet18 stage), a page of channels at a time.

import { canvasToMnist, DrawPad, paintImage } from "./canvas.js";
import { $, el } from "./dom.js";
import { extent, paintMap } from "./analysis-heatmap.js";
import { message, showErrors } from "./analysis-parts.js";
import { SLOTS, aName, shapeOf, watch } from "./analysis-store.js";

const PAGE = 32; // channels shown at a time per layer
const TINY = 4; // maps of at most this many pixels are scaled over their whole layer: one pixel has no range

/** True for the shape the pad draws: one grey channel of 28x28. */
const drawable = (shape) => shape?.[0] === 1 && shape[1] === 28 && shape[2] === 28;

const describeShape = ([c, h, w]) => `${h}×${w}${c === 3 ? " RGB" : c === 1 ? " grey" : ` × ${c}`}`;

export function mountMaps(store) {
  const section = $(".features"), samples = $("#maps-samples"), preview = $("#maps-preview");
  const pages = new Map(); // "slot layer" -> first channel shown; kept while the input changes
  const pad = new DrawPad($("#maps-pad"), (final) => {
    const rows = canvasToMnist($("#maps-pad"));
    paintImage(preview, [rows]); // live while drawing; the store hears of the stroke at its end
    if (final) store.useDrawing(rows);
  });
  $("#maps-clear").addEventListener("click", () => pad.clear());

  // the pad only where the runs take 28x28 grey digits; elsewhere a test image is the input
  watch(store, (s) => [shapeOf(s)], (state) => {
    const shape = shapeOf(state);
    if (!shape) return;
    const draw = drawable(shape);
    $(".pad-box", section).hidden = !draw;
    $(".sample-pick .hint", section).textContent = draw ? "Test images (or draw on the pad)" : "Pick a test image";
    if (!state.image) $("#maps-source").textContent = `What both models receive (${describeShape(shape)})`;
  });

  watch(store, (s) => [s.samples], ({ samples: loaded }) => {
    if (!loaded) return;
    const { images, labels, classes } = loaded;
    samples.replaceChildren(
      ...images.map((image, i) => {
        const canvas = el("canvas");
        paintImage(canvas, image);
        const what = aName(classes[labels[i]] ?? String(labels[i]));
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
    const [c, h, w] = [image.pixels.length, image.pixels[0].length, image.pixels[0][0].length];
    preview.setAttribute("aria-label", `Input to both models, ${describeShape([c, h, w])}`);
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
      for (const layer of answer.value.layers) box.append(layerMaps(layer, slot, pages));
    }
  });
}

/** One layer's channels as small canvases, a page at a time, with a readout of the hovered channel's range. */
function layerMaps({ name, shape, maps }, slot, pages) {
  const [channels, h, w] = shape;
  const key = `${slot} ${name}`;
  const readout = el("span", { class: "readout hint", "aria-live": "polite" });
  const title = el("span", { text: `${name} · ${channels} × ${h} × ${w}` });
  const row = el("div", { class: "layer", "data-layer": name, "data-channels": channels }, el("h4", {}, title));
  const tiles = el("div", { class: `tiles size-${w > 14 ? "l" : w > 7 ? "m" : "s"}` });
  // one pixel per channel (ResNet18's last stage is 512 x 1 x 1) only means something against the others
  const range = h * w <= TINY ? extent(maps, true) : null;

  function show(first) {
    pages.set(key, first);
    tiles.replaceChildren();
    for (let c = first; c < Math.min(channels, first + PAGE); c++) {
      const canvas = el("canvas", { class: "map" });
      const [lo, hi] = paintMap(canvas, maps[c], range);
      const values = lo === hi ? lo.toFixed(3) : `${lo.toFixed(3)} to ${hi.toFixed(3)}`;
      const scale = range ? ` (colours over the layer, ${range[0].toFixed(3)} to ${range[1].toFixed(3)})` : "";
      const text = `${name} channel ${c}: ${values}${hi === 0 ? " (silent)" : ""}${scale}`;
      canvas.title = text;
      canvas.setAttribute("aria-label", text);
      canvas.setAttribute("role", "img");
      canvas.addEventListener("mouseenter", () => (readout.textContent = text));
      canvas.addEventListener("mouseleave", () => (readout.textContent = ""));
      tiles.append(canvas);
    }
    if (pager) pager.update(first);
  }

  const pager = channels > PAGE ? channelPager(channels, show) : null;
  if (pager) row.firstChild.append(pager.element);
  row.firstChild.append(readout);
  row.append(tiles);
  const first = pages.get(key) ?? 0;
  show(first < channels ? first : 0);
  return row;
}

/** "‹ channels 1–32 of 512 ›": buttons that page through a layer's channels. */
function channelPager(channels, show) {
  const label = el("span", { class: "page-label" });
  const prev = el("button", { type: "button", class: "secondary page", text: "‹", "aria-label": "previous channels" });
  const next = el("button", { type: "button", class: "secondary page", text: "›", "aria-label": "next channels" });
  let at = 0;
  prev.addEventListener("click", () => show(Math.max(0, at - PAGE)));
  next.addEventListener("click", () => show(Math.min(channels - 1, at + PAGE)));
  const element = el("span", { class: "pager" }, prev, label, next);
  return {
    element,
    update(first) {
      at = first;
      label.textContent = `channels ${first + 1}–${Math.min(channels, first + PAGE)} of ${channels}`;
      prev.disabled = first === 0;
      next.disabled = first + PAGE >= channels;
    },
  };
}
