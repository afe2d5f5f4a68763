// Each panel's run: its status, progress bar and text (rate, time left), its own Stop, a failed
// run's sentence, and the epoch log (with validation, the best epoch so far, and at the end which epoch's
// weights were kept and whether early stopping ended it). Redraws from the store, at most once a frame
// while training. With repeats the panel follows the seed it trains now (its status, bar and text), lists
// every seed's state in one line, and logs every seed's epochs, each line named by its seed; its Stop
// stops all of them.
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
    seeds: $(".seed-list", root),
    form: $(".fast-form", root),
  };
  if (!view.seeds) {
    // one line of every seed's state, under the progress text (only with repeats)
    view.seeds = el("p", { class: "seed-list" });
    view.seeds.hidden = true;
    view.text.after(view.seeds);
  }
  if (!view.form) {
    // the form the engine chose for this run (cnn/forms.py), under the progress text
    view.form = el("p", { class: "fast-form" });
    view.form.hidden = true;
    view.text.after(view.form);
  }
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

const kilo = (n) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(Math.round(n)));
const threadsOf = (n) => `${n} thread${Number(n) === 1 ? "" : "s"}`;
// a candidate's label as said: "plain/bf16" -> "plain, bf16"; "plain/bf16/1t" -> "plain, bf16, 1 thread"
const spoken = (label) => label.replace(/\/(\d+)t$/, (_, n) => `/${threadsOf(n)}`).replaceAll("/", ", ");

/** "fast form: plain, bf16, 2 threads · measured (0.3 s): 4.0k images/s vs 1.9k for plain, fp32", from
 * run_started. */
export function formText(f) {
  if (!f) return "";
  // data-parallel: a process of one thread per core (cnn/parallel.py); not with batch norm
  const procs = f.data_parallel > 1 ? ` × ${f.data_parallel} processes` : f.why ? ` (one process: ${f.why})` : "";
  const head = `fast form: ${f.form}, ${f.precision}${f.threads ? `, ${threadsOf(f.threads)}` : ""}${procs}`;
  const rates = Object.entries(f.rates ?? {});
  if (!f.autotune) return `${head} · not timed (autotune off)`;
  if (!rates.length) return `${head} · the only candidate${splitText(f.split)}`;
  const base = `${f.form}/${f.precision}`;
  const mine = f.rates[`${base}/${f.threads}t`] != null ? `${base}/${f.threads}t` : base;
  // where there was a final (the fastest fp32 and bf16 forms timed again, against each other, at each thread
  // count: the "/<n>t" rates), the choice was made among its finalists: the comparison said is theirs too
  const fewer = /\/\d+t$/;
  const tops = new Set(rates.filter(([k]) => fewer.test(k)).map(([k]) => k.replace(fewer, "")));
  const final = rates.filter(([k]) => tops.has(k) || tops.has(k.replace(fewer, "")));
  const pool = final.length ? final : rates;
  const [other, rate] = pool.filter(([k]) => k !== mine).sort((a, b) => b[1] - a[1])[0] ?? [];
  const busy = f.busy ? ", the machine busy" : ""; // a busy CPU has a choice of its own
  const when = f.measured ? `measured (${f.seconds.toFixed(1)} s${busy})` : `measured earlier on this machine${busy}`;
  const vs = other ? ` vs ${kilo(rate)} for ${spoken(other)}` : "";
  return `${head} · ${when}: ${kilo(f.rates[mine] ?? 0)} images/s${vs}${splitText(f.split)}`;
}

/** A run alone: whether it split over a process per core (cnn/split.py), and the rates that decided it. */
function splitText(s) {
  if (!s) return "";
  if (!s.rates) return ` · one process: ${s.why}`;
  const when = s.measured ? "timed" : "timed earlier";
  const rates = `${kilo(s.rates.split)} images/s split vs ${kilo(s.rates.one)} in one process`;
  const start = `${s.start_seconds.toFixed(1)} s to start`;
  return ` · ${s.chosen ? "split" : "not split"} (${when}: ${rates}, ${start})`;
}

/** "seed 11, 2 of 3 · " with repeats; "" for a lone seed. */
function seedOf(store, run) {
  if (store.repeats < 2) return "";
  return `seed ${run.seed ?? run.config?.seed}, ${run.repeat + 1} of ${store.repeats} · `;
}

/** Every seed of the slot in one line: "seeds: 0 finished 97.12% · 1 running · 2 queued". */
function seedList(store, slot) {
  const words = store.seeds[slot].map((run) => {
    const acc = run.epoch.at(-1)?.test_acc;
    const state = run.status === "finished" && acc != null ? `finished ${pct(acc)}` : run.status;
    return `${run.seed ?? run.config?.seed} ${state}`;
  });
  return `seeds: ${words.join(" · ")}`;
}

function render(store, view, slot) {
  const run = store.current(slot);
  const stoppable = store.seeds[slot].some((r) => !store.isEnded(r) && !r.stopping);
  view.stop.disabled = !stoppable;
  view.seeds.hidden = store.repeats < 2 || !run;
  if (!view.seeds.hidden) view.seeds.textContent = seedList(store, slot);
  const form = formText(run?.info.fast_form);
  view.form.hidden = !form;
  view.form.textContent = form;
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
  view.status.textContent = `${run.status} · ${seedOf(store, run)}run ${run.id}`;
  const epochs = planned(run);
  const total = epochs * (run.info.train_samples ?? run.config.train_samples); // NaN before run_started: bar at 0
  const seen = run.batch.at(-1)?.samples_seen ?? 0;
  const value = run.status === "finished" ? 1 : Math.min(1, seen / total) || 0;
  view.progress.value = value;
  view.progress.setAttribute("aria-valuetext", `${run.status}, ${Math.round(value * 100)}%`);
  view.text.textContent = progressText(run, ended, epochs, total, value);
  // a failed seed's sentence stays in view while the next one trains
  const failed = store.seeds[slot].find((r) => r.error);
  const error = run.error ?? failed?.error;
  const who = run.error || !failed || store.repeats < 2 ? "Run" : `Seed ${failed.seed}`;
  const note = store.seeds[slot].map((r) => r.note).find(Boolean) ?? "";
  view.message.textContent = error ? `${who} failed: ${error}` : note;
}

/** The epochs a run was started for (its run_finished says how many ran, which early stopping may cut). */
const planned = (run) => run.config?.epochs ?? run.info.epochs;

function logLine(run, p, named) {
  const val = p.val_acc == null ? "" : `val acc ${pct(p.val_acc)}, loss ${p.val_loss.toFixed(4)}${p.best_epoch === p.epoch ? " (best so far)" : ""} · `;
  const test = `test acc ${pct(p.test_acc)}, loss ${p.test_loss.toFixed(4)}`;
  const train = `train acc ${pct(p.train_acc)}, loss ${p.train_loss.toFixed(4)}`;
  const seed = named ? `seed ${run.seed} · ` : "";
  const text = `${seed}epoch ${p.epoch}/${planned(run)}: ${val}${test} · ${train} · ${p.seconds.toFixed(1)} s`;
  return el("li", { text, "data-repeat": String(run.repeat) });
}

/** How a finished run ended, where the log alone does not say: early stopping, and the epoch kept. With
 * repeats (named) every seed's end is said, and how a stopped or failed one ended. */
function endText(run, named) {
  const seed = named ? `seed ${run.seed}: ` : "";
  if (named && ["stopped", "failed"].includes(run.status)) {
    const n = run.epoch.length;
    return `${seed}${run.status} ${n ? `after ${n} epoch${n === 1 ? "" : "s"}` : "before its first epoch"}`;
  }
  if (run.status !== "finished") return "";
  const best = run.info.best_epoch, ran = run.info.epochs ?? run.epoch.at(-1)?.epoch;
  if (run.info.early_stopped) return `${seed}stopped early at epoch ${ran}; best epoch ${best} kept`;
  if (best == null) return named ? `${seed}finished after ${ran} epochs` : ""; // the last epoch's weights are the model
  return `${seed}ran all ${ran} epochs; best epoch ${best} kept`;
}

const endOf = (log, run) => $(`.end[data-repeat="${run.repeat}"]`, log);

function appendLog(view, run, from, named) {
  const log = view.log;
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4; // follow unless scrolled up
  const end = endOf(log, run); // the seed's ending stays its last line
  for (const p of run.epoch.slice(from)) log.insertBefore(logLine(run, p, named), end);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function renderEnd(view, run, named) {
  const text = endText(run, named), end = endOf(view.log, run);
  if (!text) end?.remove();
  else if (end) end.textContent = text;
  else {
    // after the seed's last line; seeds of a slot train one after another, so that is usually the log's end
    const lines = view.log.querySelectorAll(`li[data-repeat="${run.repeat}"]`);
    const line = el("li", { class: "end", text, "data-repeat": String(run.repeat) });
    if (lines.length) lines[lines.length - 1].after(line);
    else view.log.append(line);
    view.log.scrollTop = view.log.scrollHeight; // how it ended is the line to read
  }
}

export function mountRunLog(store) {
  const views = {};
  for (const slot of SLOTS) {
    views[slot] = parts(slot, $(`#panel-${slot}`));
    views[slot].stop.addEventListener("click", () => actions.stop(store, [slot]));
  }
  const named = () => store.repeats > 1;
  const seedOfChange = (slot, repeat) => store.seeds[slot].find((r) => r.repeat === repeat);
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
    const event = kind === "seed" ? change.event : kind;
    const run = slot ? seedOfChange(slot, change.repeat ?? 0) : null;
    if (kind === "reset") {
      for (const s of SLOTS) {
        views[s].log.replaceChildren();
        for (const r of store.seeds[s]) {
          appendLog(views[s], r, 0, named());
          renderEnd(views[s], r, named());
        }
        render(store, views[s], s);
      }
    } else if (!run) return;
    else if (event === "batch") later(slot);
    else if (event === "epoch") {
      appendLog(views[slot], run, change.from, named());
      later(slot);
    } else if (event === "status") {
      renderEnd(views[slot], run, named());
      render(store, views[slot], slot);
    }
  });
  for (const slot of SLOTS) render(store, views[slot], slot);
}
