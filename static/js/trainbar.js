// The train bar: mode, repeats, Train and Stop, the sentence under them, and "Analyse A vs B" once both
// shown runs have ended and both analyses are stored. With repeats, the group's progress (runs done out of
// runs planned, and the time left), and once every seed has ended and been analysed, the verdict: its
// sentence, the seeds it used, each model's 95% interval and which trains faster. Redraws from the store.
import * as actions from "./actions.js";
import { $ } from "./dom.js";
import { pct } from "./format.js";
import { clock, secondsLeft } from "./progress.js";
import { groupSecondsLeft } from "./seeds.js";
import { SLOTS } from "./store.js";

const STARTUP_S = 3; // a worker's start (importing torch, loading the data) before its first batch
const PROGRESS_MS = 1000; // the group's time left, redrawn at most this often while batches come

/** Why Train is off, or what the server said; "" when there is nothing to say. */
function sentence(store) {
  if (store.notice) return store.notice;
  const bad = store.invalid();
  if (bad.length) {
    const fields = bad.reduce((n, s) => n + Object.keys(store.checks[s].errors ?? {}).length, 0);
    const who = bad.length === 2 ? "Models A and B have" : `Model ${bad[0].toUpperCase()} has`;
    const what = fields > 1 ? "invalid values; fix the marked fields" : "an invalid value; fix the marked field";
    return `${who} ${what} first.`;
  }
  const offline = SLOTS.find((s) => store.checks[s].state === "offline");
  return offline ? store.checks[offline].message : "";
}

function renderAnalysisLink(store) {
  const link = $("#analyse");
  const { a, b } = store.runs;
  const ended = a && b && store.isEnded(a) && store.isEnded(b);
  const ready = ended && a.analysis === "ready" && b.analysis === "ready";
  link.hidden = !ready;
  if (ready) link.href = `/analysis?a=${encodeURIComponent(a.id)}&b=${encodeURIComponent(b.id)}`;
  else link.removeAttribute("href");
  link.title = store.repeats > 1 ? `compares each model's first seed (A ${a?.seed}, B ${b?.seed})` : "";
  let text = "";
  const all = store.allRuns();
  if (store.repeats > 1) {
    // the analyses wait until no run trains; while seeds train, the group's progress says what happens
    const failed = all.filter((r) => r.analysis === "failed").length;
    const waiting = all.filter((r) => r.analysis === "pending" || (r.status === "finished" && !r.analysis)).length;
    if (!all.every((r) => store.isEnded(r))) text = "";
    else if (waiting) text = `Analysing ${waiting} of the ${all.length} runs on the full test set…`;
    else if (failed) text = `The analysis of ${failed} of the ${all.length} runs failed.`;
  } else if (ended && !ready) {
    const failed = SLOTS.filter((s) => store.runs[s].analysis === "failed").map((s) => s.toUpperCase());
    // a finished run is always analysed; a stopped one only if it had saved weights
    const waiting = SLOTS.some((s) => {
      const run = store.runs[s];
      return run.analysis === "pending" || (run.status === "finished" && !run.analysis);
    });
    if (failed.length) text = `The analysis of ${failed.join(" and ")} failed.`;
    else if (waiting) text = "Analysing both runs on the full test set…";
  }
  $("#analyse-note").textContent = text;
}

/** Seconds one whole seed of a slot takes: as a finished seed of it took, else as its training one goes. */
function eachSeconds(store, slot) {
  const done = store.seeds[slot].find((r) => r.status === "finished" && r.info.train_seconds);
  if (done) return done.info.train_seconds + done.epoch.reduce((s, p) => s + (p.eval_seconds ?? 0), 0) + STARTUP_S;
  const run = store.seeds[slot].find((r) => r.batch.length && !store.isEnded(r));
  if (!run) return NaN;
  const p = run.batch.at(-1), epochs = run.config?.epochs ?? run.info.epochs;
  const samples = epochs * (run.info.train_samples ?? run.config.train_samples);
  const left = { rate: p.samples_per_s, epochs, epochsLogged: 0, testSamples: run.info.test_samples };
  return secondsLeft({ ...left, samplesLeft: samples, lastEvalSeconds: run.epoch.at(-1)?.eval_seconds }) + STARTUP_S;
}

/** The time a slot's seed in training (or next to train) still needs. */
function currentSeconds(store, run, each) {
  const p = run.batch.at(-1);
  if (run.status !== "running" || !p) return each; // queued, or still loading: a whole seed
  const epochs = run.config?.epochs ?? run.info.epochs;
  const total = epochs * (run.info.train_samples ?? run.config.train_samples);
  return secondsLeft({
    samplesLeft: total - p.samples_seen,
    rate: p.samples_per_s,
    epochs,
    epochsLogged: run.epoch.length,
    lastEvalSeconds: run.epoch.at(-1)?.eval_seconds,
    testSamples: run.info.test_samples,
  });
}

/** "2 of 6 runs done · 1 training, 3 queued · 0:45 left"; once all ended, how they ended. */
function renderGroupProgress(store) {
  const box = $("#group-progress");
  const all = store.allRuns();
  box.hidden = store.repeats < 2 || !all.length;
  if (box.hidden) return;
  const done = all.filter((r) => store.isEnded(r));
  const count = (status) => all.filter((r) => r.status === status).length;
  const bar = $("#group-bar");
  bar.value = done.length / all.length;
  box.dataset.done = String(done.length);
  box.dataset.planned = String(all.length);
  const parts = [`${done.length} of ${all.length} runs done`];
  if (done.length < all.length) {
    parts.push(`${count("running")} training, ${count("queued")} queued`);
    const slots = SLOTS.filter((s) => store.seeds[s].length).map((s) => {
      const each = eachSeconds(store, s), left = store.seeds[s].filter((r) => !store.isEnded(r));
      return { current: left.length ? currentSeconds(store, left[0], each) : 0, queued: Math.max(0, left.length - 1), each };
    });
    const left = groupSecondsLeft(slots, store.mode !== "sequential");
    if (Number.isFinite(left)) parts.push(`${clock(left)} left`); // known once a seed trains
  } else {
    const stopped = count("stopped"), failed = count("failed");
    if (stopped || failed) parts.push([stopped && `${stopped} stopped`, failed && `${failed} failed`].filter(Boolean).join(", "));
  }
  $("#group-text").textContent = parts.join(" · ");
}

/** The verdict's sentence and the seeds it used; training time where the verdict measured it. */
function renderVerdict(store) {
  const box = $("#group-verdict");
  const verdict = store.verdict?.group === store.group ? store.verdict : null;
  box.hidden = !verdict;
  box.dataset.state = verdict?.state ?? "";
  if (!verdict) return;
  if (verdict.state === "failed") {
    $("#verdict-sentence").textContent = `No verdict: ${verdict.message}`;
    $("#verdict-seeds").textContent = "";
    return;
  }
  const { sentence: said, seeds_used: used, train_seconds: time } = verdict.data;
  for (const slot of SLOTS) box.dataset[`seeds${slot.toUpperCase()}`] = String(used[slot].length);
  $("#verdict-sentence").textContent = said;
  const seeds = SLOTS.map((s) => `${s.toUpperCase()} ${used[s].length ? used[s].join(", ") : "none"}`).join("; ");
  let text = `Seeds used: ${seeds}.`;
  const intervals = SLOTS.filter((s) => verdict.data.accuracy[s].ci95).map((s) => {
    const { mean, ci95 } = verdict.data.accuracy[s];
    return `${s.toUpperCase()} ${pct(mean)} (95% interval ${pct(ci95[0])} to ${pct(ci95[1])})`;
  });
  if (intervals.length) text += ` Mean test accuracy: ${intervals.join(", ")}.`;
  if (time?.sentence) text += ` Training time: ${time.sentence}`; // which trains faster, and beyond noise or not
  $("#verdict-seeds").textContent = text;
}

function render(store) {
  const active = store.active();
  const train = $("#train");
  train.disabled = !store.canTrain();
  train.title = active.length ? "Stop the current runs first" : "";
  $("#stop").disabled = active.length === 0;
  const text = sentence(store);
  if ($("#train-message").textContent !== text) $("#train-message").textContent = text;
  $("#repeats").setAttribute("aria-invalid", String(store.noticeSlot === "repeats"));
  renderAnalysisLink(store);
  renderGroupProgress(store);
  renderVerdict(store);
}

export function mountTrainBar(store) {
  const mode = $("#mode"), repeats = $("#repeats");
  // the number as typed (the server refuses what it does not take, naming "repeats"); an empty box sends ""
  const typed = () => (repeats.value.trim() === "" ? repeats.value : Number(repeats.value));
  $("#train").addEventListener("click", () => actions.train(store, mode.value, typed()));
  $("#stop").addEventListener("click", () => actions.stop(store, SLOTS));
  repeats.addEventListener("input", () => {
    if (store.noticeSlot === "repeats") store.say(""); // the refusal has been read
  });
  let timer = null; // the group's progress, redrawn once a second while batches come
  store.subscribe((change) => {
    const event = change.kind === "seed" ? change.event : change.kind;
    if (event === "batch" || event === "epoch") {
      if (!timer && store.repeats > 1) {
        timer = setTimeout(() => {
          timer = null;
          renderGroupProgress(store);
        }, PROGRESS_MS);
      }
      return; // nothing else here depends on metrics
    }
    // a reload shows how the shown group was started
    if (change.kind === "reset") {
      if ([...mode.options].some((o) => o.value === store.mode)) mode.value = store.mode;
      if (store.allRuns().length) repeats.value = String(store.repeats);
    }
    render(store);
  });
  render(store);
}
