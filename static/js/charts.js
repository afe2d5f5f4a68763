// A curve chart overlaying models A and B: per-batch training as a thin line, per-epoch test as
// markers joined by a bold line, per-epoch validation (where a run holds some out) dashed, and a star on
// the epoch each run keeps. Tiny API: reset(), addPoint(slot, kind, x, y), setMark(slot, x), setters for the
// view. Slot colours and the axis and grid ink come from theme.js and follow a live light/dark switch.
// Points are buffered and drawn at most once per animation frame with update("none");
// the decimation plugin keeps tens of thousands of points smooth. Chart comes from
// /vendor/chart.umd.js (a classic script, loaded before the modules).
import { alpha, onSchemeChange, SLOT_COLOURS as COLOURS, themeColours } from "./theme.js";

const SLOTS = ["a", "b"], KINDS = ["batch", "epoch", "val"];
const NAMES = { batch: "train", epoch: "test", val: "validation" };

export class CurveChart {
  /** canvas: its aria-label names the chart; yTitle: axis title; percent: y in 0..100 */
  constructor(canvas, { yTitle, percent = false }) {
    this.canvas = canvas;
    this.percent = percent;
    this.series = {}; // "a.batch" -> [{x, y}]; the chart is handed copies
    this.marks = { a: null, b: null }; // slot -> x of the epoch the run keeps (its best by validation), or null
    const datasets = [];
    for (const slot of SLOTS) {
      for (const kind of KINDS) {
        this.series[`${slot}.${kind}`] = [];
        const bold = kind !== "batch"; // an epoch's measure: test or validation
        // the kept epoch's point is a star; scriptable, so a mark that moves needs no new data
        const marked = (ctx) => bold && ctx.raw && ctx.raw.x === this.marks[slot];
        datasets.push({
          label: `${slot.toUpperCase()} ${NAMES[kind]}`,
          kind,
          data: [],
          borderColor: bold ? COLOURS[slot] : alpha(COLOURS[slot], 0.55),
          backgroundColor: kind === "val" ? alpha(COLOURS[slot], 0.25) : COLOURS[slot],
          borderWidth: kind === "epoch" ? 3 : kind === "val" ? 2 : 1,
          borderDash: kind === "val" ? [6, 4] : [],
          pointRadius: (ctx) => (marked(ctx) ? 9 : bold ? 4 : 0),
          pointStyle: (ctx) => (marked(ctx) ? "star" : kind === "val" ? "triangle" : bold ? "circle" : "line"),
          pointBorderWidth: (ctx) => (marked(ctx) ? 2 : 1),
          pointHoverRadius: bold ? 6 : 3,
          tension: 0,
          order: bold ? 0 : 1, // epoch curves drawn on top
        });
      }
    }
    const Chart = globalThis.Chart;
    this.chart = new Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        parsing: false, // data are {x, y} already; needed by decimation
        normalized: true, // x values are sorted and unique per dataset
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        spanGaps: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", min: 0, title: { display: true, text: "samples seen" } },
          y: { type: "linear", title: { display: true, text: yTitle } },
        },
        plugins: {
          decimation: { enabled: true, algorithm: "lttb", samples: 600 },
          legend: {
            labels: {
              boxWidth: 18,
              usePointStyle: true,
              sort: (a, b) => a.datasetIndex - b.datasetIndex,
              // a validation line is named once a run has one
              filter: (item, data) => data.datasets[item.datasetIndex].kind !== "val" || data.datasets[item.datasetIndex].data.length > 0,
            },
          },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${this.format(c.parsed.y)}` } },
        },
      },
    });
    this.frame = 0;
    this.applyTheme();
    // the colours live in CSS under prefers-color-scheme; re-read them when the scheme changes
    onSchemeChange(() => this.applyTheme());
    this.publish();
  }

  /** Takes axis, tick, grid and legend colours from the page's CSS variables (--muted, --grid). */
  applyTheme() {
    const { ink, grid } = themeColours();
    const { scales, plugins } = this.chart.options;
    for (const axis of [scales.x, scales.y]) {
      axis.title.color = ink;
      axis.ticks.color = ink;
      axis.grid.color = grid;
    }
    plugins.legend.labels.color = ink;
    this.canvas.dataset.ink = ink;
    this.schedule();
  }

  format(y) {
    return this.percent ? `${y.toFixed(2)}%` : y.toFixed(4);
  }

  reset() {
    for (const data of Object.values(this.series)) data.length = 0;
    this.marks = { a: null, b: null };
    this.publish(); // at once: counts of the runs shown before must not outlive them until the next frame
    this.schedule();
  }

  /** Adds one point; x must grow within a series (older or equal x is dropped). */
  addPoint(slot, kind, x, y) {
    const data = this.series[`${slot}.${kind}`];
    if (data.length && x <= data[data.length - 1].x) return;
    data.push({ x, y: this.percent ? y * 100 : y });
    this.schedule();
  }

  /** Stars the epoch point at x of both the test and the validation line (null: none); label is published. */
  setMark(slot, x, label = "") {
    if (this.marks[slot] === x) return;
    this.marks[slot] = x;
    this.canvas.dataset[`best${slot.toUpperCase()}`] = label;
    this.schedule();
  }

  setXTitle(text) {
    this.chart.options.scales.x.title.text = text;
    this.schedule();
  }

  /** [min, max] of the y axis, or null for automatic. */
  setYRange(range) {
    const y = this.chart.options.scales.y;
    [y.min, y.max] = range ?? [undefined, undefined];
    this.schedule();
  }

  count(slot) {
    return KINDS.reduce((n, kind) => n + this.series[`${slot}.${kind}`].length, 0);
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const datasets = this.chart.data.datasets;
    let i = 0;
    for (const slot of SLOTS) {
      // A copy: Chart.js watches the pushes on the array it holds, at a cost that grows with its
      // length; ours grow freely between frames. Assigned through the decimation plugin's setter.
      for (const kind of KINDS) datasets[i++].data = this.series[`${slot}.${kind}`].slice();
    }
    this.chart.update("none");
    this.publish();
  }

  // Point counts as data attributes: what tests and curious users can read.
  publish() {
    for (const slot of SLOTS) this.canvas.dataset[`points${slot.toUpperCase()}`] = String(this.count(slot));
  }
}
