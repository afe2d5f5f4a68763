// A curve chart overlaying models A and B: per-batch training as a thin line, per-epoch test as
// markers joined by a bold line, per-epoch validation (where a run holds some out) dashed, and a star on
// the epoch each run keeps. Tiny API: reset(), addPoint(slot, kind, x, y), setMark(slot, x), setters for the
// view. Slot colours and the axis and grid ink come from theme.js and follow a live light/dark switch.
// Points are buffered and drawn at most once per animation frame with update("none"); training lines are
// thinned as they grow (thin.js) and the decimation plugin keeps the rest smooth. Chart comes from
// /vendor/chart.umd.js (a classic script, loaded before the modules).
//
// For a group trained over seeds the test and validation lines carry means (handed whole with setSeries),
// the test line gets a shaded band between its "lo" and "hi" series and, with whiskers, error bars at its
// markers (points {x, y, lo, hi, n}); "s0".."s9" are thin test lines of single seeds, and the training line
// is drawn per seed ("batch" the first, "b1".."b9" the others: their batches are sampled at other steps).
import { alpha, onSchemeChange, SLOT_COLOURS as COLOURS, themeColours } from "./theme.js";
import { ThinLine } from "./thin.js";

export const MAX_SEEDS = 10; // the server's most repeats
const SLOTS = ["a", "b"], LINES = ["batch", "epoch", "val"];
const SEED_KINDS = Array.from({ length: MAX_SEEDS }, (_, k) => `s${k}`);
const BATCH_KINDS = Array.from({ length: MAX_SEEDS - 1 }, (_, k) => `b${k + 1}`); // seeds after the first
const KINDS = [...LINES, "lo", "hi", ...SEED_KINDS, ...BATCH_KINDS]; // "hi" right after "lo": it fills down to it
const isBatch = (kind) => kind === "batch" || BATCH_KINDS.includes(kind);
const NAMES = { batch: "train", epoch: "test", val: "validation" };

// Error bars: a vertical line with caps from lo to hi at each point of a dataset marked `whiskers`.
const WHISKERS = {
  id: "whiskers",
  afterDatasetsDraw(chart) {
    const { ctx, chartArea: area, scales } = chart;
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
    ctx.clip();
    chart.data.datasets.forEach((ds, i) => {
      if (!ds.whiskers || !chart.isDatasetVisible(i)) return;
      ctx.strokeStyle = ds.borderColor;
      ctx.lineWidth = 1.5;
      chart.getDatasetMeta(i).data.forEach((point, j) => {
        const raw = ds.data[j];
        if (!raw || !(raw.hi > raw.lo)) return;
        const top = scales.y.getPixelForValue(raw.hi), bottom = scales.y.getPixelForValue(raw.lo);
        ctx.beginPath();
        ctx.moveTo(point.x, top);
        ctx.lineTo(point.x, bottom);
        for (const y of [top, bottom]) {
          ctx.moveTo(point.x - 4, y);
          ctx.lineTo(point.x + 4, y);
        }
        ctx.stroke();
      });
    });
    ctx.restore();
  },
};

export class CurveChart {
  /** canvas: its aria-label names the chart; yTitle: axis title; percent: y in 0..100; whiskers: error bars on
   * the test line's points where they carry a band */
  constructor(canvas, { yTitle, percent = false, whiskers = false }) {
    this.canvas = canvas;
    this.percent = percent;
    this.whiskers = whiskers;
    this.series = {}; // "a.batch" -> [{x, y}]; the chart is handed copies
    this.thin = {}; // "a.batch" -> ThinLine: what a training line hands the chart
    this.marks = { a: null, b: null }; // slot -> x of the epoch the run keeps (its best by validation), or null
    this.bandName = "min–max"; // what the band spans, for the tooltip
    const datasets = [];
    for (const slot of SLOTS) {
      for (const kind of KINDS) {
        this.series[`${slot}.${kind}`] = [];
        if (isBatch(kind)) this.thin[`${slot}.${kind}`] = new ThinLine();
        datasets.push(LINES.includes(kind) || isBatch(kind) ? this.line(slot, kind) : this.extra(slot, kind));
      }
    }
    const Chart = globalThis.Chart;
    this.chart = new Chart(canvas, {
      type: "line",
      data: { datasets },
      plugins: whiskers ? [WHISKERS] : [],
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
              // a validation line is named once a run has one, the band once a group has one, the single seeds'
              // lines once shown (once: the first seed's line stands for them all)
              filter: (item, data) => {
                const { kind, data: points } = data.datasets[item.datasetIndex];
                return kind === "batch" || kind === "epoch" || (["val", "hi", "s0"].includes(kind) && points.length > 0);
              },
            },
          },
          tooltip: {
            filter: (item) => !["lo", "hi"].includes(item.dataset.kind),
            callbacks: { label: (c) => this.tooltip(c) },
          },
        },
      },
    });
    this.frame = 0;
    this.applyTheme();
    // the colours live in CSS under prefers-color-scheme; re-read them when the scheme changes
    onSchemeChange(() => this.applyTheme());
    this.publish();
  }

  /** One of the slot's main lines: training per batch (of one seed), test or validation per epoch. */
  line(slot, kind) {
    const bold = !isBatch(kind); // an epoch's measure: test or validation
    // the kept epoch's point is a star; scriptable, so a mark that moves needs no new data. A training line
    // has plain values: Chart.js resolves a scriptable option once per point drawn, a plain one once per line
    // (with 50k points a line, 12 ms less a draw: benchmarks/pixel_latency.py)
    const marked = (ctx) => ctx.raw && ctx.raw.x === this.marks[slot];
    return {
      label: `${slot.toUpperCase()} ${NAMES[kind] ?? NAMES.batch}`,
      kind,
      data: [],
      whiskers: this.whiskers && kind === "epoch",
      borderColor: bold ? COLOURS[slot] : alpha(COLOURS[slot], 0.55),
      backgroundColor: kind === "val" ? alpha(COLOURS[slot], 0.25) : COLOURS[slot],
      borderWidth: kind === "epoch" ? 3 : kind === "val" ? 2 : 1,
      borderDash: kind === "val" ? [6, 4] : [],
      pointRadius: bold ? (ctx) => (marked(ctx) ? 9 : 4) : 0,
      pointStyle: bold ? (ctx) => (marked(ctx) ? "star" : kind === "val" ? "triangle" : "circle") : "line",
      pointBorderWidth: bold ? (ctx) => (marked(ctx) ? 2 : 1) : 1,
      pointHoverRadius: bold ? 6 : 3,
      tension: 0,
      order: bold ? 0 : 1, // epoch curves drawn on top
    };
  }

  /** A band's edge ("hi" fills down to "lo") or a single seed's thin test line, drawn under the means. */
  extra(slot, kind) {
    const band = kind === "lo" || kind === "hi";
    return {
      label: band ? `${slot.toUpperCase()} ${this.bandName}` : `${slot.toUpperCase()} seed`,
      kind,
      data: [],
      borderColor: band ? "transparent" : alpha(COLOURS[slot], 0.5),
      backgroundColor: alpha(COLOURS[slot], band ? 0.18 : 0.5),
      borderWidth: band ? 0 : 1,
      fill: kind === "hi" ? "-1" : false,
      pointRadius: band ? 0 : 1.5,
      pointHoverRadius: band ? 0 : 3,
      pointStyle: kind === "hi" ? "rect" : "circle",
      tension: 0,
      order: band ? 3 : 2,
    };
  }

  tooltip(c) {
    const { raw, dataset } = c;
    const head = `${dataset.label}: ${this.format(c.parsed.y)}`;
    if (!(raw?.n > 1)) return head;
    return `${head} (${this.bandName} ${this.format(raw.lo)} to ${this.format(raw.hi)}, ${raw.n} seeds)`;
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
    for (const key of Object.keys(this.series)) this.series[key] = []; // never empties an array handed in
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

  /** Hands one series whole (a group's means, a band's edge, a seed's line); the chart reads it as it grows.
   * Values are as drawn (in percent for a percent chart). */
  setSeries(slot, kind, points) {
    this.series[`${slot}.${kind}`] = points;
    this.schedule();
  }

  /** Names a line in the legend and the tooltip. */
  setLabel(slot, kind, label) {
    const i = SLOTS.indexOf(slot) * KINDS.length + KINDS.indexOf(kind);
    this.chart.data.datasets[i].label = label;
    this.schedule();
  }

  /** What a band spans ("min–max", "mean ± 1 sd"), and how many seeds each slot's band covers (0: none) at
   * most, and at how many epochs it has a width: published as data-band-a, data-band-points-a. */
  setBand(name, covers = { a: 0, b: 0 }, points = { a: 0, b: 0 }) {
    this.bandName = name;
    for (const slot of SLOTS) {
      const up = slot.toUpperCase();
      if (covers[slot]) {
        this.canvas.dataset[`band${up}`] = String(covers[slot]);
        this.canvas.dataset[`bandPoints${up}`] = String(points[slot]);
      } else {
        delete this.canvas.dataset[`band${up}`];
        delete this.canvas.dataset[`bandPoints${up}`];
      }
      this.setLabel(slot, "hi", `${up} ${name}`);
    }
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

  /** Points of the slot's main lines (train, test, validation). */
  count(slot) {
    return LINES.reduce((n, kind) => n + this.series[`${slot}.${kind}`].length, 0);
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
      // length; ours grow freely between frames. Assigned through the decimation plugin's setter. A training
      // line hands its thinned points (thin.js), whose work grows with the new points only.
      for (const kind of KINDS) {
        const key = `${slot}.${kind}`;
        datasets[i++].data = this.thin[key] ? this.thin[key].read(this.series[key]) : this.series[key].slice();
      }
    }
    this.chart.update("none");
    this.publish();
  }

  // Point counts as data attributes: what tests and curious users can read; with whiskers, how many test
  // points carry error bars, and how many single seeds' lines are drawn.
  publish() {
    for (const slot of SLOTS) {
      const up = slot.toUpperCase();
      this.canvas.dataset[`points${up}`] = String(this.count(slot));
      const seeds = SEED_KINDS.filter((kind) => this.series[`${slot}.${kind}`].length).length;
      this.canvas.dataset[`seedLines${up}`] = String(seeds);
      if (this.whiskers) {
        const bars = this.series[`${slot}.epoch`].filter((p) => p.hi > p.lo).length;
        this.canvas.dataset[`errorBars${up}`] = String(bars);
      }
    }
  }
}
