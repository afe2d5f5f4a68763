// A model's class probabilities as bars named by class: every class in label order when there are few
// (the pad's ten digits), else the most likely few, best first. Used by the pad and the upload.
import { $, el } from "./dom.js";

const ALL_UP_TO = 10; // more classes than this (a folder of 100, say): only the top rows

/** An empty box for one model: its title, the rows, a note under them. */
export function buildProbs(box, title) {
  box.replaceChildren(
    el("p", { class: "probs-title", text: title }),
    el("div", { class: "prob-rows" }),
    el("p", { class: "probs-note" }),
  );
}

function row(label, name) {
  const parts = [["digit", name], ["bar"], ["value"], ["mark"]].map(([c, text = ""]) => el("span", { class: c, text }));
  parts[1].append(el("i"));
  parts[3].setAttribute("aria-hidden", "true");
  return el("div", { class: "prob-row", "data-class": String(label) }, ...parts);
}

/** The labels to show, in order: all of them, or the `top` most likely (none while there are no probs). */
function shownLabels(count, probs, top) {
  if (top === null && count <= ALL_UP_TO) return [...Array(count).keys()];
  if (!probs) return [];
  return [...probs.keys()].sort((i, j) => probs[j] - probs[i]).slice(0, top ?? ALL_UP_TO);
}

/**
 * Shows probs (one per class, or null for none) under their names; classes: names by label (null: the
 * labels themselves). top: how many rows at most, best first; null: every class when there are few.
 */
export function showProbs(box, classes, probs, { top = null, message = "" } = {}) {
  const names = classes ?? (probs ? probs.map((_, i) => String(i)) : []);
  const labels = shownLabels(names.length, probs, top);
  const rows = $(".prob-rows", box);
  const key = labels.map((i) => names[i]).join("\n");
  if (rows.dataset.key !== key) {
    // rebuilt only when the names change, so the bars of a live drawing glide instead of jumping
    rows.replaceChildren(...labels.map((i) => row(i, names[i])));
    rows.dataset.key = key;
  }
  box.dataset.words = String(names.some((n) => n.length > 2)); // names, not digits: a wider first column
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  rows.querySelectorAll(".prob-row").forEach((r) => {
    const label = Number(r.dataset.class), p = probs ? probs[label] : 0;
    $("i", r).style.width = `${(p * 100).toFixed(1)}%`;
    $(".value", r).textContent = probs ? `${(p * 100).toFixed(1)}%` : "";
    r.classList.toggle("best", label === best);
  });
  $(".probs-note", box).textContent = message;
  if (probs) {
    box.dataset.label = String(best);
    box.dataset.name = names[best] ?? String(best);
  } else {
    delete box.dataset.label;
    delete box.dataset.name;
  }
}

/** The verdict on two answers ({a, b}: label or undefined) named by name(slot, label); marks the rows they
 * disagree on. comparable: false when the two know different classes (two datasets), where answers that
 * differ are no disagreement. Returns the sentence and whether they disagree. */
export function verdict(boxes, labels, name, comparable = true) {
  for (const box of Object.values(boxes)) {
    for (const r of box.querySelectorAll(".prob-row")) {
      r.classList.remove("disagree");
      $(".mark", r).textContent = "";
    }
  }
  const { a, b } = labels;
  if (a === undefined || b === undefined) {
    const slot = a !== undefined ? "a" : b !== undefined ? "b" : null;
    return { text: slot ? `Model ${slot.toUpperCase()} reads ${name(slot, labels[slot])}.` : "", disagree: false };
  }
  if (name("a", a) === name("b", b)) return { text: `Both read ${name("a", a)}.`, disagree: false };
  if (!comparable) return { text: `A reads ${name("a", a)}; B reads ${name("b", b)} (they know different classes).`, disagree: false };
  for (const [slot, label] of [["a", a], ["b", b]]) {
    const r = $(`.prob-row[data-class="${label}"]`, boxes[slot]);
    if (!r) continue;
    r.classList.add("disagree");
    $(".mark", r).textContent = "≠";
  }
  return { text: `They disagree: A reads ${name("a", a)}, B reads ${name("b", b)}.`, disagree: true };
}
