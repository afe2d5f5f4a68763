// Each panel's run: its status, progress bar and text (rate, time left), its own Stop, a failed
// run's sentence, and the epoch log (with validation, the best epoch so far, and at the end which epoch's
// weights were kept and whether early stopping ended it). Redraws from the store, at most once a frame
// while training.
import * as actions from "./actions.js";
import { $, el } from "./dom.js";
import { int, pct } from "./format.js";
import { clock, secondsLeft } from "./progress.js";
import { SLOTS } from "./store.js";

function parts(slot, root) {
  const up = slot.toUpperCase();
  const view = {
    run: $(".run", root),
    status: $(".status", root),
    stop: $(".stop-one", root),
    progress: $("progress", root),
    text: $(".progress-text", root),
    message: $(".run-message", root),
    log: $(".log", root),
  };
  view.stop.textContent = `Stop ${up}`;
  view.progress.setAttribute("aria-label", `Progress ${up}`);
  view.log.setAttribute("aria-label", `Epoch log ${up}`);
  return view;
}

/** The progress line: epoch, batch and rate; while training, the time left; once ended, how it ended. */
function progressText(run, ended, epochs, total, value) {
  const p = run.batch.at(-1);
  if (run.status === "queued") return "waiting for its worker…";
  if (!p) return run.status === "running" ? "loading data…" : ended ? `${run.status} before its first batch` : "";
  // running: the epoch-to-date rate the server sends; ended: the whole run's average
  const trained = run.info.samples_seen ?? p.samples_seen, secs = run.info.train_seconds ?? p.train_seconds;
  const rate = ended && secs > 0 ? trained / secs : p.samples_per_s;
  const out = [`epoch ${p.epoch}/${epochs}`, `batch ${p.step}/${p.steps}`];
  out.push(`${int(rate)} samples/s${ended ? " on average" : ""}`);
  if (ended && run.status !== "finished") out.unshift(`${run.status} at ${Math.round(value * 100)}%`);
  if (run.status === "finished" && secs) out.push(`trained in ${secs.toFixed(1)} s`);
  let left = "";
  if (!ended) {
    const seconds = secondsLeft({
      samplesLeft: total - p.samples_seen,
      rate,
      epochs,
      epochsLogged: run.epoch.length,
      lastEvalSeconds: run.epoch.at(-1)?.eval_seconds,
      testSamples: run.info.test_samples,
    });
    left = ` · ${clock(seconds)} left`;
  }
  return out.join(" · ") + left;
}

function render(store, view, slot) {
  const run = store.runs[slot];
  view.stop.disabled = !run || store.isEnded(run) || Boolean(run.stopping);
  if (!run) {
    view.run.dataset.status = "idle";
    delete view.run.dataset.runId;
    view.status.textContent = "no run yet";
    view.progress.value = 0;
    view.text.textContent = "";
    view.message.textContent = "";
    return;
  }
  const ended = store.isEnded(run);
  view.run.dataset.status = run.status;
  view.run.dataset.runId = run.id;
  view.status.textContent = `${run.status} · run ${run.id}`;
  const epochs = planned(run);
  const total = epochs * (run.info.train_samples ?? run.config.train_samples); // NaN before run_started: bar at 0
  const seen = run.batch.at(-1)?.samples_seen ?? 0;
  const value = run.status === "finished" ? 1 : Math.min(1, seen / total) || 0;
  view.progress.value = value;
  view.progress.setAttribute("aria-valuetext", `${run.status}, ${Math.round(value * 100)}%`);
  view.text.textContent = progressText(run, ended, epochs, total, value);
  view.message.textContent = run.error ? `Run failed: ${run.error}` : (run.note ?? "");
}

/** The epochs a run was started for (its run_finished says how many ran, which early stopping may cut). */
const planned = (run) => run.config?.epochs ?? run.info.epochs;

function logLine(run, p) {
  const val = p.val_acc == null ? "" : `val acc ${pct(p.val_acc)}, loss ${p.val_loss.toFixed(4)}${p.best_epoch === p.epoch ? " (best so far)" : ""} · `;
  const test = `test acc ${pct(p.test_acc)}, loss ${p.test_loss.toFixed(4)}`;
  const train = `train acc ${pct(p.train_acc)}, loss ${p.train_loss.toFixed(4)}`;
  return el("li", { text: `epoch ${p.epoch}/${planned(run)}: ${val}${test} · ${train} · ${p.seconds.toFixed(1)} s` });
}

/** How a finished run ended, where the log alone does not say: early stopping, and the epoch kept. */
function endText(run) {
  if (run.status !== "finished") return "";
  const best = run.info.best_epoch, ran = run.info.epochs ?? run.epoch.at(-1)?.epoch;
  if (run.info.early_stopped) return `stopped early at epoch ${ran}; best epoch ${best} kept`;
  if (best == null) return ""; // no validation share: the last epoch's weights are the model
  return `ran all ${ran} epochs; best epoch ${best} kept`;
}

function appendLog(view, run, from) {
  const log = view.log;
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4; // follow unless scrolled up
  const end = $(".end", log); // the ending stays last
  for (const p of run.epoch.slice(from)) log.insertBefore(logLine(run, p), end);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function renderEnd(view, run) {
  const text = run ? endText(run) : "", end = $(".end", view.log);
  if (!text) end?.remove();
  else if (end) end.textContent = text;
  else {
    view.log.append(el("li", { class: "end", text }));
    view.log.scrollTop = view.log.scrollHeight; // how it ended is the line to read
  }
}

export function mountRunLog(store) {
  const views = {};
  for (const slot of SLOTS) {
    views[slot] = parts(slot, $(`#panel-${slot}`));
    views[slot].stop.addEventListener("click", () => actions.stop(store, [slot]));
  }
  const pending = new Set(); // slots to redraw on the next frame (batches come ~20 a second per run)
  const later = (slot) => {
    if (!pending.size) {
      requestAnimationFrame(() => {
        for (const s of pending) render(store, views[s], s);
        pending.clear();
      });
    }
    pending.add(slot);
  };

  store.subscribe((change) => {
    const { kind, slot } = change;
    if (kind === "reset") {
      for (const s of SLOTS) {
        views[s].log.replaceChildren();
        if (store.runs[s]) appendLog(views[s], store.runs[s], 0);
        renderEnd(views[s], store.runs[s]);
        render(store, views[s], s);
      }
    } else if (kind === "batch") later(slot);
    else if (kind === "epoch") {
      appendLog(views[slot], store.runs[slot], change.from);
      later(slot);
    } else if (kind === "status") {
      renderEnd(views[slot], store.runs[slot]);
      render(store, views[slot], slot);
    }
  });
  for (const slot of SLOTS) render(store, views[slot], slot);
}
