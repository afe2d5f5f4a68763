// Chart.js charts of the analysis page: gradient flow (log y, one colour per layer, mean solid
// and max dashed) and reliability diagrams (accuracy per confidence bin against the diagonal).
// Chart comes from /vendor/chart.umd.js, a classic deferred script loaded before the modules.

import { SLOT_COLOURS, themeColours } from "./theme.js";

const LAYER_COLOURS = ["#2563eb", "#e8590c", "#15803d", "#9333ea", "#0891b2", "#ca8a04", "#db2777"];
// past seven layers (ResNet18 has 21 learnable ones) further hues, spread around the wheel
const layerColour = (i) => LAYER_COLOURS[i] ?? `hsl(${(i * 137.5) % 360}, 65%, 45%)`;

function axis(type, title, { ink, grid }, extra = {}) {
  return { type, title: { display: true, text: title, color: ink }, ticks: { color: ink }, grid: { color: grid }, ...extra };
}

const charts = new Map(); // canvas -> Chart, so a redraw replaces the old one

function draw(canvas, config) {
  charts.get(canvas)?.destroy();
  const chart = new globalThis.Chart(canvas, config);
  charts.set(canvas, chart);
  return chart;
}

export function clear(canvas) {
  charts.get(canvas)?.destroy();
  charts.delete(canvas);
}

/** The [min, max] of all positive |grad| values in some gradient answers, for a shared y axis. */
export function gradientRange(answers) {
  let lo = Infinity, hi = -Infinity;
  for (const answer of answers) {
    for (const layer of answer.layers) {
      for (const v of [...layer.mean_abs, ...layer.max_abs]) {
        if (v > 0 && Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
  }
  return Number.isFinite(lo) ? [lo / 1.5, hi * 1.5] : [1e-6, 1];
}

/** layers: [{name, samples_seen, mean_abs, max_abs}]; range: shared [min, max] of the y axis. */
export function gradientChart(canvas, layers, range) {
  const t = themeColours();
  const positive = (v) => (v > 0 && Number.isFinite(v) ? v : null); // log axis: no zeros
  const datasets = [];
  layers.forEach((layer, i) => {
    const colour = layerColour(i);
    const points = (values) => layer.samples_seen.map((x, k) => ({ x, y: positive(values[k]) }));
    const dot = layer.samples_seen.length < 2 ? 3 : 0; // a short run's one sample is a point, not a line
    datasets.push({ label: `${layer.name} mean`, data: points(layer.mean_abs), borderColor: colour, backgroundColor: colour, borderWidth: 2, pointRadius: dot });
    datasets.push({ label: `${layer.name} max`, data: points(layer.max_abs), borderColor: colour, backgroundColor: colour, borderWidth: 1.5, borderDash: [5, 4], pointRadius: dot, pointStyle: "triangle" });
  });
  canvas.dataset.layers = layers.length;
  canvas.parentElement.classList.toggle("tall", layers.length > 8); // room for a long legend
  return draw(canvas, {
    type: "line",
    data: { datasets },
    options: {
      parsing: false,
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      spanGaps: true,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: {
        x: axis("linear", "samples seen", t, { min: 0 }),
        y: axis("logarithmic", "|gradient|", t, { min: range[0], max: range[1] }),
      },
      plugins: {
        legend: layerLegend(t, layers),
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.parsed.y.toExponential(2)}` } },
      },
    },
  });
}

/** One legend entry per layer (its mean line's), which shows or hides both of the layer's lines. */
function layerLegend(t, layers) {
  return {
    labels: {
      color: t.ink,
      boxWidth: layers.length > 8 ? 10 : 18,
      font: { size: layers.length > 8 ? 10 : 12 },
      filter: (item) => item.datasetIndex % 2 === 0,
      generateLabels: (chart) =>
        globalThis.Chart.defaults.plugins.legend.labels.generateLabels(chart).map((item) => ({ ...item, text: layers[item.datasetIndex >> 1]?.name ?? item.text })),
    },
    onClick: (event, item, legend) => {
      const chart = legend.chart, shown = chart.isDatasetVisible(item.datasetIndex);
      for (const i of [item.datasetIndex, item.datasetIndex + 1]) chart.setDatasetVisibility(i, !shown);
      chart.update();
    },
  };
}

/** bins: [{low, high, count, confidence, accuracy}] (accuracy null for an empty bin). */
export function reliabilityChart(canvas, bins, slot) {
  const t = themeColours();
  const labels = bins.map((b) => `${b.low.toFixed(2)}–${b.high.toFixed(2)}`);
  return draw(canvas, {
    data: {
      labels,
      datasets: [
        {
          type: "bar",
          label: "accuracy",
          data: bins.map((b) => (b.count ? b.accuracy : null)),
          backgroundColor: SLOT_COLOURS[slot],
          categoryPercentage: 1,
          barPercentage: 0.9,
          order: 2,
        },
        {
          type: "line",
          label: "perfect calibration",
          data: bins.map((b) => (b.low + b.high) / 2),
          borderColor: t.ink,
          borderDash: [6, 4],
          borderWidth: 1.5,
          pointRadius: 0,
          order: 1,
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: axis("category", "confidence", t, { ticks: { color: t.ink, maxRotation: 60, autoSkip: true } }),
        y: axis("linear", "accuracy", t, { min: 0, max: 1 }),
      },
      plugins: {
        legend: { labels: { color: t.ink, boxWidth: 18 } },
        tooltip: {
          callbacks: {
            label: (c) => {
              const b = bins[c.dataIndex];
              if (c.datasetIndex === 1) return `perfect calibration: ${c.parsed.y.toFixed(3)}`;
              return b.count ? `accuracy ${b.accuracy.toFixed(3)}, mean confidence ${b.confidence.toFixed(3)}, ${b.count} images` : "no images";
            },
          },
        },
      },
    },
  });
}
