// Progress arithmetic for a run's panel: time left and clock text. No DOM, so a test can import it.

/**
 * Seconds a run still needs: its untrained samples at the current rate, plus one test-set
 * evaluation for every epoch not yet logged (each as long as the last one took; before the first,
 * a rough guess: a forward pass costs about a third of a training step).
 */
export function secondsLeft({ samplesLeft, rate, epochs, epochsLogged, lastEvalSeconds = null, testSamples = 10000 }) {
  if (!(rate > 0)) return NaN;
  const each = lastEvalSeconds ?? testSamples / (3 * rate);
  return samplesLeft / rate + Math.max(0, epochs - epochsLogged) * each;
}

/** 75 -> "1:15", 3725 -> "1:02:05"; "–" for anything unknown. */
export function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds), m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}
