// Colours the pages' charts share: A blue and B orange everywhere, and the axis and grid ink
// from the page's CSS variables, which change with the light/dark scheme.

export const SLOT_COLOURS = { a: "#2563eb", b: "#e8590c" }; // fixed: A blue, B orange

/** "#2563eb", 0.5 -> "rgba(37, 99, 235, 0.5)". */
export function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

/** Axis ink and grid colour from --muted and --grid, read now (they follow the scheme). */
export function themeColours() {
  const css = getComputedStyle(document.documentElement);
  return {
    ink: css.getPropertyValue("--muted").trim() || "#666",
    grid: css.getPropertyValue("--grid").trim() || "rgba(128,128,128,0.2)",
  };
}

/** Calls fn when the light/dark scheme changes, so charts can re-read themeColours(); returns an undo. */
export function onSchemeChange(fn) {
  const query = matchMedia("(prefers-color-scheme: dark)");
  query.addEventListener("change", fn);
  return () => query.removeEventListener("change", fn);
}
