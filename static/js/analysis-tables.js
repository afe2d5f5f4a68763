// Views of the two tables: per-class scores (precision, recall, F1, then accuracy and macro F1)
// and model facts (accuracy, size, cost, speed) with B ÷ A. The better value of each pair is marked.

import { $, el } from "./dom.js";
import { bytes, count, fixed, int, pct, seconds } from "./format.js";
import { showErrors } from "./analysis-parts.js";
import { SLOTS, nameOf, watch } from "./analysis-store.js";

/** Marks the better of two values in two cells; higher=true when more is better. */
function mark(cells, values, higher = true) {
  const [x, y] = values;
  if (x == null || y == null || x === y) return;
  const best = (x > y) === higher ? 0 : 1;
  cells[best].classList.add("better");
  cells[best].append(el("span", { class: "mark", text: " ▲", "aria-label": "better" }));
}

export function mountTables(store) {
  watch(store, (s) => [s.pair], (state) => {
    if (!state.pair) return;
    showScores(state);
    showFacts(state);
  });
}

function showScores(state) {
  const { results, errors } = state.pair;
  const section = $(".scores");
  const body = $("tbody", section), foot = $("tfoot", section);
  body.replaceChildren();
  foot.replaceChildren();
  showErrors(section, state.ids, errors);
  if (!results.a && !results.b) return;
  const named = results.a ? "a" : "b";
  const classes = Math.max(...SLOTS.map((s) => results[s]?.per_class.length ?? 0));
  section.dataset.many = String(classes > 20); // a long table scrolls under its header
  for (let c = 0; c < classes; c++) {
    const row = el("tr", {}, el("th", { scope: "row", text: nameOf(state, named, c) }));
    for (const metric of ["precision", "recall", "f1"]) {
      const values = SLOTS.map((s) => results[s]?.per_class[c]?.[metric] ?? null);
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

// [label, key, format, higher is better (null: not compared)]
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

function showFacts(state) {
  const { results, errors } = state.pair;
  const section = $(".facts");
  const body = $("tbody", section);
  body.replaceChildren();
  showErrors(section, state.ids, errors);
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
