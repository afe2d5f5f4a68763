// Arithmetic over a slot's seeds, for a group trained with repeats: the spread of one measure at each
// x (mean, standard deviation, min and max over the seeds that reached it), and the time a group still
// needs. No DOM, so a test can import it.

/** Mean, sample standard deviation (0 for one value), min and max of a list of numbers. */
export function describe(values) {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean, sd, min: Math.min(...values), max: Math.max(...values) };
}

/**
 * One measure of every seed, gathered by key (an epoch): the mean at each key and a band around it, min–max
 * ("range") or mean ± one standard deviation ("sd"). The arrays of {x, y} points are kept in key order and
 * updated in place as seeds add values, so a chart can be handed them as they are. Seeds of one config share
 * their epochs and x values, so a key first met comes after every earlier one.
 */
export class Spread {
  constructor(band = "range", scale = 1) {
    this.band = band;
    this.scale = scale; // 100 for a chart in percent
    this.index = new Map(); // key -> position in the arrays
    this.values = []; // per key: every seed's value
    this.mean = []; // {x, y, lo, hi, n}: the mean, with its band for error bars
    this.lo = [];
    this.hi = [];
  }

  add(key, x, y) {
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.values.length;
      this.index.set(key, i);
      this.values.push([]);
    }
    this.values[i].push(y * this.scale);
    this.update(i, x);
  }

  update(i, x) {
    const { n, mean, sd, min, max } = describe(this.values[i]);
    const [lo, hi] = this.band === "sd" ? [mean - sd, mean + sd] : [min, max];
    this.mean[i] = { x, y: mean, lo, hi, n };
    this.lo[i] = { x, y: lo };
    this.hi[i] = { x, y: hi };
  }

  /** The most seeds any key holds: how many seeds the band covers. */
  seeds() {
    return this.values.reduce((most, v) => Math.max(most, v.length), 0);
  }

  /** Keys where two seeds or more give the band a width to draw. */
  spread() {
    return this.values.filter((v) => v.length > 1).length;
  }
}

/**
 * Seconds a group still needs. slots: per slot, {current: seconds its seed in training (or next to train)
 * still needs, or 0 when none is left; queued: seeds after that one; each: seconds one whole seed takes}.
 * In parallel mode a round trains one seed of each slot together and ends with its slowest; in sequential
 * mode every seed trains alone. NaN while anything is unknown.
 */
export function groupSecondsLeft(slots, parallel) {
  if (parallel) {
    const rounds = Math.max(...slots.map((s) => s.queued));
    const each = Math.max(...slots.filter((s) => s.queued).map((s) => s.each), 0);
    return Math.max(...slots.map((s) => s.current)) + rounds * each;
  }
  return slots.reduce((sum, s) => sum + s.current + s.queued * (s.queued ? s.each : 0), 0);
}
