// One panel's learning-rate plan: the rate its schedule gives over the run, as the server's check
// planned it (lr_plan: [epoch, lr] pairs), on a small Chart.js line in the slot's colour. Chart comes
// from /vendor/chart.umd.js (a classic script, loaded before the modules).
import { alpha, onSchemeChange, SLOT_COLOURS, themeColours } from "./theme.js";

/** 0.00025 -> "2.5e-4", 0.001 -> "1e-3": rates read best as powers of ten. */
const rate = (v) => (v === 0 ? "0" : Number(v).toExponential(1).replace(".0e", "e"));

export class LrPlanChart {
  constructor(canvas, slot) {
    this.canvas = canvas;
    const colour = SLOT_COLOURS[slot];
    this.chart = new globalThis.Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          {
            label: "learning rate",
            data: [],
            borderColor: colour,
            backgroundColor: alpha(colour, 0.12),
            fill: true,
            borderWidth: 2,
            pointRadius: 0,
            tension: 0,
          },
        ],
      },
      options: {
        parsing: false,
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", min: 0, title: { display: true, text: "epoch" }, ticks: { precision: 0 } },
          y: { type: "linear", min: 0, ticks: { maxTicksLimit: 4, callback: rate } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (c) => `epoch ${c.parsed.x.toFixed(2)}: ${rate(c.parsed.y)}` } },
        },
      },
    });
    this.applyTheme();
    onSchemeChange(() => this.applyTheme());
  }

  applyTheme() {
    const { ink, grid } = themeColours();
    const { x, y } = this.chart.options.scales;
    for (const axis of [x, y]) {
      axis.ticks.color = ink;
      axis.grid.color = grid;
    }
    x.title.color = ink;
    this.chart.update("none");
  }

  /** plan: [[epoch, lr], ...]; the chart's points and peak are published as data attributes. */
  draw(plan) {
    const data = plan.map(([x, y]) => ({ x, y }));
    this.chart.data.datasets[0].data = data;
    this.chart.options.scales.x.max = data.at(-1)?.x;
    this.chart.update("none");
    this.canvas.dataset.points = String(data.length);
    this.canvas.dataset.peak = String(Math.max(0, ...plan.map(([, y]) => y)));
  }
}
