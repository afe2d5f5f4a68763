// The main page's one store: the runs shown (by group and slot, every seed of a group trained with
// repeats) with their statuses and metrics, the group's verdict, each panel's last check by the server, the
// train bar's state, and the datasets the server lists. It applies every server event, notifies subscribers
// with what changed, and never touches the DOM, the network or a view.
//
// A slot's first seed (repeat 0, the config's own seed) is its run: store.runs[slot], what the panels, the
// pad, the grid and the upload show and ask about, with changes "batch", "epoch" and "status". Every seed,
// that one included, is in store.seeds[slot] (by repeat); a change of any other seed is {kind: "seed",
// event: "batch" | "epoch" | "status", slot, repeat, from}, which only the views of seeds hear.

export const SLOTS = ["a", "b"];
// Server events this page deliberately leaves alone: gradient sizes are drawn by the analysis
// page, which fetches them once a run has ended.
export const IGNORED = ["gradients"];
const BUFFERED_MAX = 2000; // events kept per run never heard of, until a listing says what it is

const METRICS = { batch: true, epoch: true }; // events that add a point to a run's metrics
export const groupOf = (run) => run.group ?? run.id; // a record from before groups is a group of its own

// name -> (store, payload): the page's handler of each server event it declares
const HANDLERS = {
  history(store, { runs, older = [] }) {
    store.know(older);
    store.adopt(runs); // the newest group, with metrics, replayed through the live handlers
    store.ready = true;
    store.emit({ kind: "ready" });
  },
  runs_created(store, { group, runs }) {
    store.show(runs.map((r, i) => ({ ...r, group: r.group ?? group, slot: r.slot ?? i })));
  },
  run_started: (store, p) =>
    store.onRun("run_started", p, (run) => {
      Object.assign(run.info, p); // with its dataset, classes (names by label) and shape [C, H, W]
      store.advance(run, "run_started");
    }),
  batch: (store, p) =>
    store.onRun("batch", p, (run, slot) => {
      const last = run.batch.at(-1);
      if (last && p.samples_seen <= last.samples_seen) return; // already have it (history, then live)
      run.batch.push(p);
      store.changed(run, slot, "batch", { from: run.batch.length - 1 });
      store.advance(run, "run_started"); // a batch means it trains, even if its run_started went missing
    }),
  epoch: (store, p) =>
    store.onRun("epoch", p, (run, slot) => {
      const last = run.epoch.at(-1);
      if (last && p.epoch <= last.epoch) return;
      run.epoch.push(p);
      store.changed(run, slot, "epoch", { from: run.epoch.length - 1 });
    }),
  run_finished: (store, p) =>
    store.onRun("run_finished", p, (run) => {
      Object.assign(run.info, p); // epochs: how many ran; best_epoch: the one kept (null without validation)
      store.advance(run, "run_finished");
    }),
  run_stopped: (store, p) => store.onRun("run_stopped", p, (run) => store.advance(run, "run_stopped")),
  run_failed: (store, p) =>
    store.onRun("run_failed", p, (run) => {
      if (store.advance(run, "run_failed")) run.error = p.error;
    }),
  analysis_ready: (store, p) => store.onRun("analysis_ready", p, (run) => (run.analysis = "ready")),
  analysis_failed: (store, p) => store.onRun("analysis_failed", p, (run) => (run.analysis = "failed")),
  request_failed: (store, p) => store.say(p.error),
};

/** [slot, repeat, record] of each record that has a slot: repeat as the record says (a POST /api/runs answer
 * does not, and lists the seeds in order), slot by position where a record has none. */
function placeAll(records) {
  const count = { a: 0, b: 0 };
  const placed = [];
  records.forEach((r, i) => {
    const slot = SLOTS[r.slot ?? i];
    if (!slot) return;
    placed.push([slot, r.repeat ?? count[slot], r]);
    count[slot]++;
  });
  return placed;
}

/** The server events this page handles: every one the schema declares, less IGNORED. */
export const HANDLED = Object.keys(HANDLERS);

export class Store {
  /** contract: the schema's "events" (statuses, status_after, transitions); defaults: model A's config, what an
   * empty slot stands for (its data set names the classes). */
  constructor(contract, defaults = {}) {
    this.contract = contract;
    this.defaults = defaults;
    this.ended = new Set(contract.statuses.ended);
    this.runs = { a: null, b: null }; // slot -> its first seed: {id, config, seed, repeat, status, error,
    // analysis, info, batch, epoch, stopping, note}
    this.seeds = { a: [], b: [] }; // slot -> every seed's run, by repeat (seeds[slot][0] is runs[slot])
    this.group = null; // the group shown: runs started together share one; slot 0 is A
    this.mode = null; // how the shown group was started
    this.repeats = 1; // seeds per slot the shown group was started with
    // GET /api/groups/<group>/verdict of the shown group: null until asked; {group, state: "ready", data}
    // or {group, state: "failed", message}
    this.verdict = null;
    this.band = "range"; // the curves' band over seeds: "range" (min–max) or "sd" (mean ± one sd)
    this.seedLines = false; // the curves also draw each seed's test line
    this.xAxis = "samples"; // or "epochs"
    this.known = new Set(); // every run id the server told of; events of those not shown are dropped
    this.buffered = new Map(); // run id never heard of -> [name, payload] that came for it
    // slot -> the server's last word on the panel as typed: {pending, state: null | "valid" |
    // "invalid" | "offline", config, params, macs, layers (rows: name, type, output_shape, params, macs,
    // index), inputShape, classes, lrPlan ([epoch, lr] pairs), errors: {field or "layers[i]": rule}, message}
    this.checks = { a: { pending: true, state: null }, b: { pending: true, state: null } };
    this.starting = false; // a POST /api/runs is on its way
    this.notice = ""; // the train bar's sentence from the server: a refusal, a failed request
    this.noticeSlot = null; // the panel a refusal concerns: typing there again clears it
    this.ready = false; // history has been applied
    this.datasets = null; // GET /api/datasets: [{name, classes, shape, train, test, counts, on_disk}], once listed
    this.listeners = new Set();
    this.quiet = 0; // > 0 while adopting: one "reset" instead of thousands of small changes
  }

  /** fn(change, store) after every change; returns an unsubscribe. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(change) {
    if (!this.quiet) for (const fn of this.listeners) fn(change, this);
  }

  /** Applies one server event; false for a name this page does not handle. */
  apply(name, payload) {
    const handler = Object.hasOwn(HANDLERS, name) ? HANDLERS[name] : null;
    if (handler) handler(this, payload ?? {});
    return Boolean(handler);
  }

  // ---- runs -------------------------------------------------------------------------------

  /** The slot of a shown run, any seed. */
  slotOf(runId) {
    return SLOTS.find((s) => this.seeds[s].some((r) => r.id === runId));
  }

  /** A shown run by id (any seed), or null. */
  find(runId) {
    for (const slot of SLOTS) {
      const run = this.seeds[slot].find((r) => r.id === runId);
      if (run) return run;
    }
    return null;
  }

  isEnded(run) {
    return this.ended.has(run.status);
  }

  /** Slots with a seed queued or training. */
  active() {
    return SLOTS.filter((s) => this.seeds[s].some((r) => !this.isEnded(r)));
  }

  /** Every shown run, A's seeds first. */
  allRuns() {
    return SLOTS.flatMap((s) => this.seeds[s]);
  }

  /** The seed a slot trains now or will next, else its last: the one its panel follows. */
  current(slot) {
    return this.seeds[slot].find((r) => !this.isEnded(r)) ?? this.seeds[slot].at(-1) ?? null;
  }

  /** Tells what changed of a run: its own kind for a slot's first seed, "seed" for the others. */
  changed(run, slot, kind, extra = {}) {
    if (run.repeat === 0) this.emit({ kind, slot, repeat: 0, ...extra });
    else this.emit({ kind: "seed", event: kind, slot, repeat: run.repeat, ...extra });
  }

  /** Both slots shown, every seed ended, and every finished one's analysis stored or failed: what the
   * group's verdict waits for. */
  settled() {
    const runs = this.allRuns();
    const analysed = (r) => r.status !== "finished" || ["ready", "failed"].includes(r.analysis);
    return Boolean(this.runs.a && this.runs.b) && runs.every((r) => this.isEnded(r) && analysed(r));
  }

  /** The verdict route's answer for a group ({state, data} or {state: "failed", message}); kept only while
   * that group is shown. */
  setVerdict(group, verdict) {
    if (group !== this.group) return;
    this.verdict = { group, ...verdict };
    this.emit({ kind: "verdict" });
  }

  /** Shows these runs (records as in GET /api/runs/<id>; metrics may be missing) in their slots, from scratch. */
  adopt(records) {
    this.quiet++;
    try {
      this.runs = { a: null, b: null };
      this.seeds = { a: [], b: [] };
      for (const r of records) this.known.add(r.id);
      const group = records.length ? groupOf(records[0]) : null;
      if (group !== this.group) this.verdict = null;
      this.group = group;
      this.mode = records.find((r) => r.mode)?.mode ?? null;
      const placed = placeAll(records);
      this.repeats = Math.max(1, ...records.map((r) => r.repeats ?? 1), ...placed.map(([, repeat]) => repeat + 1));
      for (const [slot, repeat, r] of placed) {
        const { id, config, status, error = null, analysis = null, info } = r;
        const seed = r.seed ?? config?.seed ?? null;
        const run = { id, config, seed, repeat, status, error, analysis, info: { ...info }, batch: [], epoch: [] };
        this.seeds[slot].push(run);
      }
      for (const slot of SLOTS) {
        this.seeds[slot].sort((x, y) => x.repeat - y.repeat);
        this.runs[slot] = this.seeds[slot][0] ?? null;
      }
      for (const run of this.allRuns()) {
        const r = records.find((rec) => rec.id === run.id);
        // stored metrics are the events as they were sent: the live handlers replay them
        for (const name of Object.keys(METRICS)) {
          for (const p of r.metrics?.[name] ?? []) this.apply(name, { ...p, run_id: run.id });
        }
        for (const [name, payload] of this.buffered.get(run.id) ?? []) this.apply(name, payload);
        this.buffered.delete(run.id);
      }
    } finally {
      this.quiet--;
    }
    this.emit({ kind: "reset" });
  }

  /** Whether these records (with slots) are the runs shown, each seed in its slot. */
  shows(records) {
    const placed = placeAll(records);
    const same = (slot) => {
      const wanted = placed.filter(([s]) => s === slot).sort((x, y) => x[1] - y[1]);
      return wanted.length === this.seeds[slot].length && wanted.every(([, , r], i) => this.seeds[slot][i].id === r.id);
    };
    return SLOTS.every(same);
  }

  /** A group just started, here or in another tab: adopted unless it is shown already. */
  show(records) {
    if (this.shows(records)) this.group = groupOf(records[0]);
    else this.adopt(records);
  }

  /** Marks run records as heard of; events still buffered for them belong to no shown run and go. */
  know(records) {
    for (const r of records) {
      this.known.add(r.id);
      if (!this.slotOf(r.id)) this.buffered.delete(r.id);
    }
  }

  /** Runs fn(run, slot) for an event of a shown run; drops one of an older group; buffers an unknown one. */
  onRun(name, payload, fn) {
    const slot = this.slotOf(payload.run_id);
    if (slot) {
      const run = this.find(payload.run_id), before = run.status;
      fn(run, slot);
      // metrics say what they added; every other event may change what a run's views show
      if (!(name in METRICS) || run.status !== before) this.changed(run, slot, "status");
      return;
    }
    if (this.known.has(payload.run_id)) return; // a run of an older group
    // a run never heard of (its runs_created was missed, say over a reconnect): kept until a listing
    const list = this.buffered.get(payload.run_id) ?? [];
    if (list.length < BUFFERED_MAX) list.push([name, payload]);
    this.buffered.set(payload.run_id, list);
    this.emit({ kind: "unknown", runId: payload.run_id });
  }

  /** Moves a run to the status the server gives after `event`, where the schema's transitions allow. */
  advance(run, event) {
    return this.moveTo(run, this.contract.status_after[event]);
  }

  moveTo(run, status) {
    if (!(this.contract.transitions[run.status] ?? []).includes(status)) return false;
    run.status = status;
    return true;
  }

  /** A run record from a REST answer (a stop): its status where that may follow, and its analysis. */
  merge(record) {
    const slot = this.slotOf(record.id);
    if (!slot) return;
    const run = this.find(record.id);
    run.stopping = false;
    if (!["ready", "failed"].includes(run.analysis)) run.analysis = record.analysis ?? null; // "pending" if it had weights
    this.moveTo(run, record.status);
    this.changed(run, slot, "status");
  }

  /** A stop of this shown run was asked for (stopping: true) or refused (a note to show by the run). */
  stopping(run, stopping, note = "") {
    const slot = this.slotOf(run.id);
    if (!slot) return;
    Object.assign(run, { stopping, note });
    this.changed(run, slot, "status");
  }

  // ---- datasets: what the server lists, and what each slot's run or panel was or will be trained on ----

  /** The server's dataset listing arrived (or was listed again). */
  setDatasets(list) {
    this.datasets = list;
    this.emit({ kind: "datasets" });
  }

  /** One dataset of the listing by name, or null (not listed yet, or not on the list). */
  dataset(name) {
    return this.datasets?.find((d) => d.name === name) ?? null;
  }

  /** The dataset of a slot: its shown run's (as its worker reported it, else its config), else the panel's as
   * last checked, else the defaults'. */
  datasetOf(slot) {
    const run = this.runs[slot];
    if (run) return run.info.dataset ?? run.config.dataset;
    return this.checks[slot].config?.dataset ?? this.defaults.dataset;
  }

  /** Class names of a slot's dataset: a run's own (run_started carries them), else the panel's check's (an
   * empty slot), else the listing's; null while unknown. */
  classesOf(slot) {
    const run = this.runs[slot], own = run ? run.info.classes : this.checks[slot].classes;
    return own ?? this.dataset(this.datasetOf(slot))?.classes ?? null;
  }

  /** [channels, height, width] of what a slot's model takes, found as its classes are; null while unknown. */
  shapeOf(slot) {
    const run = this.runs[slot], own = run ? run.info.shape : this.checks[slot].inputShape;
    return own ?? this.dataset(this.datasetOf(slot))?.shape ?? null;
  }

  setXAxis(axis) {
    this.xAxis = axis;
    this.emit({ kind: "axis" });
  }

  /** How the curves show a group's seeds: band "range" or "sd", and whether each seed's line is drawn too. */
  setSeedView({ band = this.band, seedLines = this.seedLines }) {
    [this.band, this.seedLines] = [band, seedLines];
    this.emit({ kind: "seed_view" });
  }

  // ---- the panels as checked by the server, and the train bar --------------------------------

  /** The panel was edited: its check is pending (the last answer stays until the next). */
  checking(slot) {
    this.checks[slot] = { ...this.checks[slot], pending: true };
    // the user moved on: a refusal of this panel, or a sentence about no panel, has been read
    if (this.notice && (this.noticeSlot === slot || this.noticeSlot === null)) this.say("");
    this.emit({ kind: "check", slot });
  }

  /** The server's answer for what the panel holds now. */
  checked(slot, result) {
    this.checks[slot] = { pending: false, ...result };
    this.emit({ kind: "check", slot });
  }

  /** POST /api/runs refused fields: errors {slot: {field: rule}}; the sentence for the train bar. */
  refused(errors, sentence) {
    for (const [slot, fields] of Object.entries(errors)) {
      this.checks[slot] = { pending: false, state: "invalid", errors: fields };
      this.emit({ kind: "check", slot });
    }
    this.say(sentence, Object.keys(errors)[0] ?? null);
  }

  /** The train bar's sentence from the server ("" clears it). */
  say(text, slot = null) {
    this.notice = text;
    this.noticeSlot = text ? slot : null;
    this.emit({ kind: "notice" });
  }

  /** A POST /api/runs is on its way (true) or answered (false); a new attempt clears the last sentence. */
  setStarting(starting) {
    this.starting = starting;
    if (starting) [this.notice, this.noticeSlot] = ["", null];
    this.emit({ kind: "notice" });
  }

  /** Slots whose panel the server refused. */
  invalid() {
    return SLOTS.filter((s) => this.checks[s].state === "invalid");
  }

  /** Train may be pressed: both panels checked and valid, nothing starting, no seed active. */
  canTrain() {
    const valid = SLOTS.every((s) => !this.checks[s].pending && this.checks[s].state === "valid");
    return valid && !this.starting && this.active().length === 0;
  }
}
