// Numbers as the pages write them: percentages, counts, sizes, durations and image shapes.
// Missing values (null) read "—" where a table may lack them.

export const pct = (x, digits = 2) => `${(100 * x).toFixed(digits)}%`;
export const int = (n) => Math.round(n).toLocaleString("en-US");
export const fixed = (x, d) => (x == null || !Number.isFinite(x) ? "—" : x.toFixed(d));

/** 1536 -> "1.5 KB". */
export function bytes(n) {
  if (n == null) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** 1950000 -> "1.95 M" (multiply-accumulates and the like). */
export function count(n) {
  if (n == null) return "—";
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** 0.3 -> "0.3 s", 75 -> "1 min 15 s". */
export function seconds(s) {
  if (s == null) return "—";
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** [3, 32, 32] -> "32×32 RGB", [1, 28, 28] -> "28×28 grey": an image shape as [channels, height, width]. */
export function imageShape(shape) {
  if (!shape) return "—";
  const [c, h, w] = shape;
  return `${h}×${w} ${c === 1 ? "grey" : c === 3 ? "RGB" : `${c}-channel`}`;
}
