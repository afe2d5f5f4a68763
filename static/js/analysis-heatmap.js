// Heatmaps for the analysis page: confusion grids of any class count (buttons, so a cell is
// clickable and focusable, with its counts in the title), test images and feature maps painted
// onto small canvases. No fetching here: the glue hands in numbers, an onPick(true, pred) callback
// and the class names ({names, short}: full names for titles, short ones for the axes).

// colours as [r, g, b]; A blue and B orange as on the main page
const RIGHT = [21, 128, 61], WRONG = [220, 38, 38], A = [37, 99, 235], B = [232, 89, 12];
// class counts up to which cells hold their counts and fill the box; above MEDIUM cells are tiny
// squares (counts on hover) in a box that scrolls, with the axes kept in view
const SMALL = 10, MEDIUM = 24;

/** "s" (up to 10 classes), "m" (up to 24) or "l": how a matrix of n classes is laid out. */
export const matrixSize = (n) => (n <= SMALL ? "s" : n <= MEDIUM ? "m" : "l");

function tint(rgb, strength) {
  // strength 0..1 -> alpha; sqrt so small counts still show against big ones
  const a = strength <= 0 ? 0 : 0.1 + 0.85 * Math.sqrt(Math.min(1, strength));
  return `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${a.toFixed(3)})`;
}

const digits = (n) => Array.from({ length: n }, (_, k) => String(k));

function grid(container, n, classes, cell, onPick) {
  const names = classes?.names?.length === n ? classes : { names: digits(n), short: digits(n) };
  const size = matrixSize(n);
  container.replaceChildren();
  container.style.setProperty("--n", n);
  container.dataset.size = size;
  // words need a wider row-label column and upright column labels
  container.classList.toggle("named", names.short.some((s) => s.length > 2));
  container.append(Object.assign(document.createElement("span"), { className: "corner" }));
  for (let p = 0; p < n; p++) container.append(axisLabel(p, "predicted", names));
  for (let t = 0; t < n; t++) {
    container.append(axisLabel(t, "true", names));
    for (let p = 0; p < n; p++) container.append(cell(t, p, names.names, size !== "l"));
  }
  // one listener for all the cells (a 100-class matrix has 10,000)
  container.onclick = (event) => {
    const btn = event.target.closest(".cm-cell");
    if (btn) onPick(Number(btn.dataset.true), Number(btn.dataset.pred), btn);
  };
}

function axisLabel(n, kind, classes) {
  const el = document.createElement("span");
  el.className = `axis ${kind}`;
  el.textContent = classes.short[n];
  el.title = `${kind} ${classes.names[n]}`;
  return el;
}

function cellButton(t, p, text, title, background) {
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "cm-cell" + (t === p ? " diag" : "");
  btn.dataset.true = t;
  btn.dataset.pred = p;
  btn.textContent = text;
  btn.title = title;
  btn.setAttribute("aria-label", title);
  btn.style.background = background;
  return btn;
}

/** One run's matrix: diagonal in green and mistakes in red, each scaled to its own maximum. */
export function confusionGrid(container, matrix, onPick, classes) {
  let maxRight = 1, maxWrong = 1;
  matrix.forEach((row, t) => row.forEach((n, p) => {
    if (t === p) maxRight = Math.max(maxRight, n);
    else maxWrong = Math.max(maxWrong, n);
  }));
  const totals = matrix.map((row) => row.reduce((s, v) => s + v, 0));
  grid(container, matrix.length, classes, (t, p, name, counts) => {
    const n = matrix[t][p], total = totals[t];
    const share = total ? ` (${((100 * n) / total).toFixed(1)}% of true ${name[t]})` : "";
    const title = `true ${name[t]}, predicted ${name[p]}: ${n} image${n === 1 ? "" : "s"}${share}`;
    const colour = t === p ? tint(RIGHT, n / maxRight) : tint(WRONG, n / maxWrong);
    return cellButton(t, p, n && counts ? String(n) : "", title, colour);
  }, onPick);
}

/** A−B: coloured by who does better in the cell (more on the diagonal, fewer off it). */
export function differenceGrid(container, a, b, onPick, classes) {
  let maxDiff = 1;
  a.forEach((row, t) => row.forEach((n, p) => (maxDiff = Math.max(maxDiff, Math.abs(n - b[t][p])))));
  grid(container, a.length, classes, (t, p, name, counts) => {
    const d = a[t][p] - b[t][p];
    const aBetter = t === p ? d > 0 : d < 0;
    const who = d === 0 ? "same" : aBetter ? "A does better" : "B does better";
    const title = `true ${name[t]}, predicted ${name[p]}: A ${a[t][p]}, B ${b[t][p]}, A−B ${signed(d)} (${who})`;
    const colour = d === 0 ? "transparent" : tint(aBetter ? A : B, Math.abs(d) / maxDiff);
    return cellButton(t, p, d && counts ? signed(d) : "", title, colour);
  }, onPick);
}

export function signed(n) {
  return n > 0 ? `+${n}` : n < 0 ? `−${-n}` : "0";
}

// A perceptual dark-to-bright ramp (viridis, 6 stops) for activations.
const RAMP = [[68, 1, 84], [65, 68, 135], [42, 120, 142], [34, 168, 132], [122, 209, 81], [253, 231, 37]];

function ramp(v) {
  const x = Math.min(1, Math.max(0, v)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}

/**
 * Paints one channel (rows of floats) onto a canvas sized to it, scaled to `range` ([lo, hi]) or to
 * its own; returns the [min, max] of its values.
 */
export function paintMap(canvas, rows, range = null) {
  const h = rows.length, w = rows[0].length;
  const own = extent(rows);
  const [lo, hi] = range ?? own;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h), span = hi - lo || 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = ramp((rows[y][x] - lo) / span), i = (y * w + x) * 4;
      img.data[i] = r;
      img.data[i + 1] = g;
      img.data[i + 2] = b;
      img.data[i + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return own;
}

/** [min, max] of rows of numbers, or of a list of such channels with `deep`. */
export function extent(values, deep = false) {
  let lo = Infinity, hi = -Infinity;
  for (const rows of deep ? values : [values]) for (const row of rows) for (const v of row) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
