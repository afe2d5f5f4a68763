// View of the Seeds section, shown when both runs of the pair belong to one group trained with repeats:
// a table of every seed of each model (test accuracy, macro F1, training time) with each model's mean,
// a strip plot of the seeds' accuracies (a dot per seed, a bar at the mean) and the group's verdict.
// Failed or stopped seeds stay in the table, marked "left out", and are out of the means and the plot.
// Under them, the verdict's evidence: each model's mean with its 95% interval, the difference with its
// interval, p-value and method, the training time, and each seed pair's McNemar test.

import { $, el } from "./dom.js";
import { fixed, pct, seconds } from "./format.js";
import { message } from "./analysis-parts.js";
import { SLOTS, watch } from "./analysis-store.js";

const SVG = "http://www.w3.org/2000/svg";
const PLOT = { width: 560, row: 44, left: 34, right: 16, top: 6, axis: 26, r: 5 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

export function mountSeeds(store) {
  watch(store, (s) => [s.group], ({ group }) => {
    const box = $("#seeds");
    box.hidden = !group;
    if (!group) return;
    drawVerdict($("#seeds-verdict"), group.verdict);
    drawEvidence(group.verdict?.value ?? null);
    const v = group.verdict;
    box.dataset.state = !v ? "loading" : v.value ? "ready" : v.waiting ? "waiting" : "failed";
    if (group.seeds) {
      drawTable($("#seeds-table tbody"), group.seeds);
      drawPlot($("#seeds-plot"), group.seeds);
    }
    message(box, group.error ? `The seeds of this group could not be loaded: ${group.error.message}` : "");
  });
}

function drawVerdict(line, verdict) {
  if (!verdict) line.textContent = "Loading the group's verdict…";
  else if (verdict.value) line.textContent = verdict.value.sentence;
  else if (verdict.waiting) {
    const n = verdict.waiting;
    line.textContent = `Verdict: waiting for ${n} run${n === 1 ? "" : "s"} of the group to end and be analysed…`;
  } else line.textContent = `No verdict: ${verdict.error.message}`;
}

const METHODS = { welch_t: "Welch's t" };

/** A p-value as the server writes it in its sentences (cnn/verdict.py p_text): "< 0.001", "0.0043", "0.69". */
const pNumber = (p) => (p < 0.001 ? "< 0.001" : p < 0.01 ? String(Number(p.toPrecision(2))) : p.toFixed(2));
const pText = (p) => (p < 0.001 ? "p < 0.001" : `p = ${pNumber(p)}`);

/** A difference of accuracies in points, signed: "+0.29", "−1.20". */
const points = (x) => `${x > 0 ? "+" : x < 0 ? "−" : ""}${Math.abs(100 * x).toFixed(2)}`;

function modelFact(slot, { mean, ci95, values }) {
  const name = el("span", { class: `col-${slot}`, text: slot.toUpperCase() });
  const n = values.length;
  let text;
  if (!n) text = ": no seed ended with an analysis.";
  else if (!ci95) text = `: test accuracy ${pct(mean)} from one seed; an interval takes two or more.`;
  else text = `: mean test accuracy ${pct(mean)}, 95% interval ${pct(ci95[0])} to ${pct(ci95[1])} over ${n} seeds (Student's t).`;
  return el("li", { "data-fact": slot }, name, text);
}

function differenceFact(diff) {
  let text;
  if (!diff) text = "A − B: too few seeds for an interval or a test (that takes at least 2 of each).";
  else {
    const method = METHODS[diff.method] ?? diff.method;
    text = `A − B: ${points(diff.mean)} points`;
    if (diff.p_value == null) text += `; every seed of each model scored the same, so there is no spread for ${method} to judge it against.`;
    else text += `, 95% interval ${points(diff.ci95[0])} to ${points(diff.ci95[1])} (${method}), ${pText(diff.p_value)}.`;
  }
  return el("li", { "data-fact": "difference", text });
}

/** The verdict's numbers: intervals, the difference, training time, and the per-pair McNemar table. */
function drawEvidence(verdict) {
  const facts = $("#seeds-facts"), body = $("#seeds-mcnemar tbody");
  if (!verdict) {
    facts.replaceChildren();
    body.replaceChildren();
    return;
  }
  const items = SLOTS.map((slot) => modelFact(slot, verdict.accuracy[slot]));
  items.push(differenceFact(verdict.difference));
  if (verdict.train_seconds?.sentence) items.push(el("li", { "data-fact": "time", text: `Training time: ${verdict.train_seconds.sentence}` }));
  facts.replaceChildren(...items);
  body.replaceChildren(
    ...verdict.mcnemar.map((pair) =>
      el("tr", { class: "pair-row" },
        ...[pair.seed_a, pair.seed_b, pair.only_a, pair.only_b].map((v) => el("td", { text: String(v) })),
        el("td", { text: pNumber(pair.p_value) }))),
  );
}

/** "finished", "stopped · left out", "training"…: where a seed stands, and whether the means use it. */
function standing(row) {
  if (row.used) return "finished";
  if (row.status === "queued") return "queued";
  if (row.status === "running") return "training";
  const gone = { failed: "analysis failed · left out", missing: "analysis file gone · left out" };
  if (row.status === "finished") return gone[row.analysis] ?? "being analysed";
  return `${row.status} · left out`;
}

function drawTable(body, { seeds, mean }) {
  const rows = [];
  for (const slot of SLOTS) {
    const mine = seeds.filter((s) => s.model === slot);
    if (!mine.length) continue;
    const name = slot.toUpperCase();
    for (const s of mine) {
      const cells = [s.seed, s.accuracy == null ? "—" : pct(s.accuracy), fixed(s.macro_f1, 3), seconds(s.train_seconds)];
      const left = !s.used && ["stopped", "failed"].includes(s.status);
      rows.push(
        el("tr", { class: `seed-row${left ? " left-out" : ""}`, "data-model": slot, "data-used": String(s.used) },
          el("th", { scope: "row", class: `col-${slot}`, text: name }),
          ...cells.map((text) => el("td", { text: String(text) })),
          el("td", { class: "status", text: standing(s) })),
      );
    }
    const m = mean[slot];
    const cells = [`${m.seeds} seed${m.seeds === 1 ? "" : "s"}`, m.accuracy == null ? "—" : pct(m.accuracy), fixed(m.macro_f1, 3), seconds(m.train_seconds), ""];
    rows.push(
      el("tr", { class: "mean-row", "data-model": slot },
        el("th", { scope: "row", class: `col-${slot}`, text: `${name} mean` }),
        ...cells.map((text) => el("td", { text }))),
    );
  }
  body.replaceChildren(...rows);
}

/** Round tick values across [lo, hi] (percent), about four of them. */
function ticks(lo, hi) {
  const step = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 25].find((s) => (hi - lo) / s <= 5) ?? 50;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(+t.toFixed(2));
  return out;
}

/** One row per model: a dot per seed the verdict uses, at its test accuracy, and a bar at their mean. */
function drawPlot(plot, { seeds, mean }) {
  const models = SLOTS.filter((slot) => seeds.some((s) => s.model === slot));
  const used = seeds.filter((s) => s.used && s.accuracy != null);
  const values = used.map((s) => 100 * s.accuracy);
  const { width, row, left, right, top, axis, r } = PLOT;
  const height = top + models.length * row + axis;
  plot.setAttribute("viewBox", `0 0 ${width} ${height}`);
  plot.dataset.dots = String(used.length);
  if (!values.length) {
    plot.replaceChildren(svg("text", { x: left, y: top + row / 2, class: "plot-note" }, "No seed ended with an analysis yet."));
    return;
  }
  const pad = Math.max((Math.max(...values) - Math.min(...values)) * 0.1, 0.25);
  const lo = Math.min(...values) - pad, hi = Math.max(...values) + pad;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (width - left - right);
  const bottom = top + models.length * row;
  const parts = [svg("line", { x1: left, x2: width - right, y1: bottom, y2: bottom, class: "plot-axis" })];
  for (const t of ticks(lo, hi)) {
    parts.push(svg("line", { x1: x(t), x2: x(t), y1: top, y2: bottom, class: "plot-grid" }));
    parts.push(svg("text", { x: x(t), y: bottom + 16, "text-anchor": "middle", class: "plot-tick" }, `${t}%`));
  }
  models.forEach((slot, i) => {
    const y = top + i * row + row / 2;
    const g = svg("g", { "data-model": slot }, svg("text", { x: 4, y: y + 4, class: `plot-label col-${slot}` }, slot.toUpperCase()));
    const placed = [];
    for (const s of used.filter((u) => u.model === slot)) {
      const cx = x(100 * s.accuracy);
      // seeds a dot's width apart are stacked above and below the line, so each stays visible
      const dy = [0, -7, 7, -14, 14, -21, 21].find((d) => !placed.some((p) => p.dy === d && Math.abs(p.cx - cx) < 2 * r)) ?? 0;
      placed.push({ cx, dy });
      const dot = svg("circle", { cx, cy: y + dy, r, class: "seed-dot", "data-model": slot, "data-seed": s.seed });
      dot.append(svg("title", {}, `${slot.toUpperCase()} seed ${s.seed}: ${pct(s.accuracy)}`));
      g.append(dot);
    }
    const m = mean[slot].accuracy;
    if (m != null) {
      const bar = svg("line", { x1: x(100 * m), x2: x(100 * m), y1: y - row / 2 + 6, y2: y + row / 2 - 6, class: "seed-mean", "data-model": slot });
      bar.append(svg("title", {}, `${slot.toUpperCase()} mean of ${mean[slot].seeds} seeds: ${pct(m)}`));
      g.append(bar);
    }
    parts.push(g);
  });
  plot.replaceChildren(...parts);
}
