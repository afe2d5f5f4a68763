"""Measure, then choose, for a run alone on a CPU: one process, or data-parallel (cnn/parallel.py) over a
process of one thread per core.

On a 2-core EPYC, model A's small convolutions gained little from a second intra-op thread, while two
processes sharing each batch trained 1.2-1.4x faster than one. That is not true of every network and
machine, and the extra processes take a few seconds to start, so the first run alone of a (machine, torch,
network, shape, batch, way of summing the gradients) times both: its form in one process, then a few steps
of the same form split over the ranks, each step with the batch's augmentation, which every rank repeats. The
rates and the ranks' start-up time are kept in <cache>/forms.json; so is a start of the ranks that failed, for
a day. Each run then splits only if the split is faster by SPLIT_MARGIN and the seconds it saves over the
run's planned images pay for starting the ranks. Timing happens in setup, before run_started, on a copy of
the model: the run's weights and random streams are those it would have had either way.
"""

import copy
import math
import os
import time

import torch
import torch.nn.functional as F

from . import data, forms, infer, parallel
from .augment import augment

SPLIT_MARGIN = 1.1  # the split must be at least this much faster: its extra processes cost memory
MIN_SECONDS = 8.0  # a run planned shorter than this in one process is not timed: the timing itself (about a
# second: a few windows in one process, the ranks' start, their steps) would eat most of what a 1.3x gain saves
WARM_STEPS = 3  # the first steps at the half batch's shape build its kernels
TIMED_SECONDS = 0.3  # about how long the split is timed
# How long a failed start of the ranks keeps later runs of its key in one process without trying: a start can
# fail for a passing cause (a /dev/shm full for a while, a machine so loaded that importing torch outlasted the
# start timeout) as well as a lasting one (a broken install; a new torch has a key of its own anyway). A day
# bounds how long a passing cause costs the split, and a lasting one costs a wait of up to START_TIMEOUT a day,
# not one a run.
FAILED_SECONDS = 24 * 3600


def setting(value):
    """-> "auto", "on" or "off" for a data_parallel setting (True and False mean on and off)."""
    value = {True: "on", False: "off", None: "off"}.get(value, value)
    if value not in ("auto", "on", "off"):
        raise ValueError(f"data_parallel: auto, on or off, not {value!r}")
    return value


def add_flag(parser):
    """The --data-parallel flag of the server and the command line."""
    parser.add_argument(
        "--data-parallel",
        nargs="?",
        const="on",
        default="auto",
        choices=["auto", "on", "off"],
        help="a run alone on a CPU: train as one process per core, its gradients summed (not with batch norm "
        "or dropout): auto (default) where that times faster and pays for its start-up, on (the bare flag) or off",
    )


def planned_images(trainer):
    return trainer.steps * trainer.cfg.batch_size * trainer.cfg.epochs


def cache_key(trainer, world, exchange):
    """The split's entry: the run's form at `world` threads, its augmentation (timed with the steps: every rank
    repeats it), and how each step's gradients are summed, through shared memory ("shm") or gloo: each is timed
    on its own, so a machine where the exchange does not apply times the split through gloo."""
    t, a = trainer, trainer.cfg.augment
    base = forms.key(t.cfg, t.dataset.shape, len(t.dataset.classes), t.device, forms.busy(t.device), world)
    return f"{base}|crop {a.crop} flip {a.flip}|split|{'shm' if exchange else 'gloo'}"


def positive(value, zero=False):
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return number and (value >= 0 if zero else value > 0)


def saved(path, entry_key):
    """-> the key's entry: its rates, or a failed start of the ranks younger than FAILED_SECONDS."""
    entry = forms.read_cache(path).get(entry_key)
    if not isinstance(entry, dict):
        return None  # none yet, or a torn file: timed again
    if "failed" in entry:
        age = time.time() - entry["at"] if positive(entry.get("at")) else -1.0
        return entry if isinstance(entry["failed"], str) and 0 <= age < FAILED_SECONDS else None
    rates = entry.get("rates")
    if isinstance(rates, dict) and positive(rates.get("one")) and positive(rates.get("split")):
        if positive(entry.get("start_seconds"), zero=True):
            return entry
    return None  # a torn or foreign entry: timed again


def pays(entry, images):
    """Whether splitting this run is faster, start-up included."""
    one, split = entry["rates"]["one"], entry["rates"]["split"]
    saves = images / one - images / split
    return split >= SPLIT_MARGIN * one and saves > entry["start_seconds"]


def stepper(trainer):
    """-> (a training step of the run's form on a model of its own, images per step, its first step's seconds)."""
    t, f = trainer, trainer.fast_form
    with torch.random.fork_rng(devices=[]):  # the run's random streams untouched (a CPU run's only)
        return forms.stepper(
            t.cfg,
            t.dataset.shape,
            len(t.dataset.classes),
            f["form"],
            f["precision"] == "bf16",
            t.images,
            t.labels,
            t.norm,
            t.device,
        )


def augmented(trainer, n):
    """-> a function giving the first n images with the run's crops and flips drawn afresh (the whole batch's,
    as every rank draws them in training), or giving them as they are for a run without augmentation. Its
    generator is its own: the run's augmentation stream is untouched."""
    t, crop, flip = trainer, trainer.cfg.augment.crop, trainer.cfg.augment.flip
    x, generator = t.images[:n], torch.Generator(t.device).manual_seed(0)
    return (lambda: augment(x, crop, flip, generator)) if crop or flip else (lambda: x)


def split_rate(trainer, steps):
    """Every rank: the whole group trains a copy of the model on the first global batch, each rank its share,
    for `steps` steps after a warm-up. The ranks run the same steps; rank 0's clock counts. -> (images/s, the
    seconds the first step took beyond a timed one: the other ranks' start after the rendezvous)."""
    t = trainer
    from .train import make_optimizer

    model = copy.deepcopy(t.model)
    optimizer = make_optimizer(t.cfg, model.parameters())
    n = min(t.cfg.batch_size, len(t.images))
    share, batch = t.group.shard(n), augmented(t, n)
    y = t.labels[:n][share]

    def step():
        x = batch()[share]
        with t.autocast():
            out = model(infer.prepare(x, t.norm)).float()
        loss = F.cross_entropy(out, y, reduction="sum") / n
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.group.reduce(model.parameters(), loss.detach() * n, (out.argmax(1) == y).sum(), False)
        optimizer.step()

    model.train()
    first = time.perf_counter()
    step()  # it waits for every rank, each of which opens its data after the rendezvous
    first = time.perf_counter() - first
    for _ in range(WARM_STEPS - 1):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - started) / steps
    return n / seconds, max(0.0, first - seconds)


def choose(trainer, world, cache):
    """Rank 0 of a run alone: starts the other ranks if splitting pays (timing it the first time).
    -> the fast form's "split" facts: rates, start_seconds, measured, chosen (or why it was not timed)."""
    t = trainer
    path = os.path.join(os.fspath(cache), forms.CACHE_FILE)
    if not t.autotune:  # no timing, and no use of an earlier one: the plain form in one process
        return {"chosen": False, "why": "autotune off"}
    shared = parallel.exchanges(world, parallel.floats(t.model))
    entry_key, images = cache_key(t, world, shared), planned_images(t)
    entry = saved(path, entry_key)
    threads = t.fast_form["threads"]
    if entry is not None and "failed" in entry:  # not tried again: it could wait START_TIMEOUT again
        return {"chosen": False, "measured": False, "why": f"ranks failed to start earlier: {entry['failed']}"}
    if entry is not None:
        if pays(entry, images):
            try:
                t.start_ranks(world, cache)
            except (RuntimeError, OSError) as exc:  # they did not all start: one process
                failed(t, threads, path, entry_key, exc)
                return {**entry, "measured": False, "chosen": False, "why": str(exc)}
        return {**entry, "measured": False, "chosen": bool(t.group)}
    timed_at = time.perf_counter()
    known, step = t.fast_form["rates"].get(label(t.fast_form)), None  # the autotuner's, maybe from earlier
    if known is None:  # a low estimate: a first step also builds the kernels
        step, n, first = stepper(t)
        known = n / first
    if images / known < MIN_SECONDS:
        return {"chosen": False, "why": "too short to pay for starting more processes"}
    if step is None:
        step, n, _ = stepper(t)
    batch = augmented(t, n)

    def one_step():  # the step after the batch's augmentation, as the split's is timed
        batch()
        step()

    # timed now, as the split is about to be; the median of a few windows, as the forms are (cnn/forms.py)
    one = sorted(forms.rate(one_step, n, t.device) for _ in range(forms.WINDOWS))[forms.WINDOWS // 2]
    steps = max(5, min(100, round(TIMED_SECONDS * one / t.cfg.batch_size)))
    started = time.perf_counter()
    try:
        t.start_ranks(world, cache, probe_steps=steps)
    except (RuntimeError, OSError) as exc:  # a rank did not start (a crash on import waits START_TIMEOUT)
        failed(t, threads, path, entry_key, exc)
        return {"chosen": False, "why": str(exc)}
    start_seconds = time.perf_counter() - started
    if (t.group.exchange is not None) != shared:  # no room for the exchange after all: timed through gloo
        entry_key = cache_key(t, world, t.group.exchange is not None)
    try:
        split, late = split_rate(t, steps)
        entry = {"rates": {"one": round(one, 1), "split": round(split, 1)}}
        entry["start_seconds"] = round(start_seconds + late, 2)
        chosen = t.group.decide(pays(entry, images))  # the other ranks learn whether they go on
    except (RuntimeError, OSError) as exc:  # a rank died timing: the copy is dropped
        t.stop_ranks(threads)
        return {"chosen": False, "why": str(exc)}
    keep(path, entry_key, entry)
    if not chosen:
        t.stop_ranks(threads)
    return {**entry, "measured": True, "chosen": chosen, "seconds": round(time.perf_counter() - timed_at, 2)}


def failed(trainer, threads, path, entry_key, exc):
    """The ranks did not all start: this process trains alone, and the failure is kept for later runs."""
    trainer.stop_ranks(threads)
    keep(path, entry_key, {"failed": str(exc), "at": round(time.time(), 1)})


def keep(path, entry_key, entry):
    try:
        with data.exclusive(path + ".lock"):
            entries = forms.read_cache(path)
            entries[entry_key] = entry
            forms.write_cache(path, entries)
    except OSError:  # a read-only cache folder: the choice still holds for this run
        pass


def label(fast_form):
    """The autotuner's rate label of the chosen form: "plain/bf16", or "plain/bf16/1t" at fewer threads."""
    base = f"{fast_form['form']}/{fast_form['precision']}"
    fewer = f"{base}/{fast_form['threads']}t"
    return fewer if fewer in fast_form["rates"] else base
