// Views of the confusion matrices (A, B and A−B, each cell a button) and of the picked cell's
// test images below them. A click asks the store for the cell; the gallery redraws from its answer.

import { $, el } from "./dom.js";
import { pct, int } from "./format.js";
import { confusionGrid, differenceGrid, matrixSize } from "./analysis-heatmap.js";
import { errorText, message, showErrors, thumb } from "./analysis-parts.js";
import { SLOTS, classesOf, nameOf, watch } from "./analysis-store.js";

export function mountConfusion(store) {
  const boxes = { a: $('[data-kind="a"]'), b: $('[data-kind="b"]'), diff: $('[data-kind="diff"]') };
  const pick = (kind) => (t, p) => store.pickCell(kind, t, p);

  watch(store, (s) => [s.pair], (state) => {
    if (!state.pair) return;
    const { results, errors } = state.pair;
    const classes = (results.a ?? results.b)?.confusion.length ?? 10;
    const section = $(".confusions"); // many classes: the matrices stack and scroll
    section.dataset.size = matrixSize(classes);
    section.style.setProperty("--n", classes);
    for (const slot of SLOTS) {
      const grid = $(".matrix", boxes[slot]);
      if (results[slot]) {
        confusionGrid(grid, results[slot].confusion, pick(slot), classesOf(state, slot));
        message(boxes[slot], "");
      } else {
        grid.replaceChildren();
        showErrors(boxes[slot], state.ids, { [slot]: errors[slot] });
      }
    }
    const diff = $(".matrix", boxes.diff);
    if (results.a && results.b && results.a.confusion.length === results.b.confusion.length) {
      differenceGrid(diff, results.a.confusion, results.b.confusion, pick("diff"), classesOf(state, "a"));
      message(boxes.diff, "");
    } else {
      diff.replaceChildren();
      message(boxes.diff, results.a && results.b ? "A and B have different classes: no difference to show." : "The difference needs both analyses.");
    }
  });

  $("#cell-close").addEventListener("click", () => store.closeCell());
  watch(store, (s) => [s.cell], (state) => showCell(state, boxes));
}

function showCell(state, boxes) {
  const { cell } = state;
  const view = $("#cell");
  if (!cell) {
    view.hidden = true;
    for (const b of document.querySelectorAll(".cm-cell[aria-pressed]")) b.removeAttribute("aria-pressed");
    return;
  }
  const { kind, t, p, answers } = cell;
  const body = $("#cell-body");
  if (!answers) {
    for (const b of document.querySelectorAll(".cm-cell[aria-pressed]")) b.removeAttribute("aria-pressed");
    $(`.cm-cell[data-true="${t}"][data-pred="${p}"]`, boxes[kind])?.setAttribute("aria-pressed", "true");
    view.hidden = false;
    view.dataset.kind = kind;
    view.dataset.state = "loading";
    const names = kind === "diff" ? "a" : kind;
    $("#cell-title").textContent = `True ${nameOf(state, names, t)}, predicted ${nameOf(state, names, p)}${t === p ? " (right)" : ""}`;
    body.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
    return;
  }
  body.replaceChildren(...Object.entries(answers).map(([slot, answer]) => cellRun(state, slot, p, answer)));
  view.dataset.state = "shown";
  view.scrollIntoView({ block: "nearest" });
}

/** One run's images in the cell, or why they could not be had. */
function cellRun(state, slot, p, answer) {
  const block = el("div", { class: "cell-run", "data-slot": slot });
  if (!answer.ok) {
    block.append(el("h4", { text: slot.toUpperCase() }), el("p", { class: "message", text: errorText(state.ids, slot, answer.error), title: answer.error.message }));
    return block;
  }
  const { count: n, images, confidences, indices } = answer.value;
  const shown = images.length < n ? ` (first ${images.length} shown)` : "";
  block.append(el("h4", { text: `${slot.toUpperCase()}: ${int(n)} image${n === 1 ? "" : "s"}${shown}` }));
  const thumbs = el("div", { class: "thumbs" });
  images.forEach((image, k) => {
    const title = `test image ${indices[k]}: predicted ${nameOf(state, slot, p)} with confidence ${pct(confidences[k], 1)}`;
    thumbs.append(thumb(image, `#${indices[k]}`, `${pct(confidences[k], 0)}`, title));
  });
  if (!n) thumbs.append(el("p", { class: "hint", text: "No test image falls in this cell." }));
  block.append(thumbs);
  return block;
}
