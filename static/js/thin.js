// A training line thinned as its points arrive: x is cut into buckets of one width, and a draw hands the chart
// each bucket's lowest and highest point, in x order. The buckets double in width (pairs merged) when a point
// falls past the last, so a line of any length is drawn from at most 4 * BUCKETS points, and each point is looked
// at once. (Handing Chart.js all of a 100k-point line each frame, for its LTTB to thin, cost a copy and
// a pass over every point per draw: benchmarks/pixel_latency.py.)
export const BUCKETS = 1000;

const lower = (a, b) => (b.y < a.y ? b : a);
const higher = (a, b) => (b.y > a.y ? b : a);

/** Folds lo..hi into the last of buckets where that is bucket i, else opens bucket i after it. */
function into(buckets, i, lo, hi) {
  const last = buckets[buckets.length - 1];
  if (last && last.i === i) {
    last.lo = lower(last.lo, lo);
    last.hi = higher(last.hi, hi);
  } else {
    buckets.push({ i, lo, hi });
  }
}

export class ThinLine {
  constructor() {
    this.restart(null);
  }

  restart(source) {
    this.source = source;
    this.used = 0; // points of source already in buckets
    this.width = 0; // x a bucket spans: set by the first point
    this.buckets = []; // [{i, lo, hi}] by bucket index i, only those holding points
  }

  /** -> the points to draw of source, an array of {x, y} with x growing, which may have grown since the last
   * call (a series handed whole keeps growing outside the chart) or been replaced. */
  read(source) {
    if (source !== this.source || source.length < this.used) this.restart(source);
    for (; this.used < source.length; this.used++) this.add(source[this.used]);
    const points = [];
    for (const { lo, hi } of this.buckets) {
      if (lo === hi) points.push(lo);
      else if (lo.x < hi.x) points.push(lo, hi);
      else points.push(hi, lo);
    }
    return points;
  }

  add(point) {
    // x counts samples seen from 0: the first width leaves room for BUCKETS points as far apart as the first
    if (!this.width) this.width = Math.max(point.x, Number.MIN_VALUE);
    let i = Math.floor(point.x / this.width);
    while (i >= 2 * BUCKETS) {
      this.merge();
      i = Math.floor(point.x / this.width);
    }
    into(this.buckets, i, point, point);
  }

  merge() {
    this.width *= 2;
    const merged = [];
    for (const { i, lo, hi } of this.buckets) into(merged, i >> 1, lo, hi);
    this.buckets = merged;
  }
}
