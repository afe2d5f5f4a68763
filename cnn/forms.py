"""Measure, then choose: the fast form of a run's network, timed where it runs.

A form is a way to compute the same function: "plain" (conv -> ReLU -> pool, as written), "pool_first" (the
classic rule with max-pool before its ReLU and the last ReLU after the flatten) and "first_conv" (that, with
FirstConv's faster weight gradient for a one-channel first layer), each in fp32 or, when precision is auto,
bf16. Which wins depends on the CPU (a trick that won 10-20% on an EPYC lost 10-13% on a Sapphire Rapids), so
the first run of a (machine, torch, architecture, shape, batch, threads) times a few steps of each (a slow one
is rated from one or two steps) and keeps the fastest in <cache>/forms.json; later runs read it and time
nothing. bf16 has to beat fp32 by a margin to be chosen.
"""

import json
import os
import platform
import time

import torch
import torch.nn.functional as F

from . import data, infer
from .models import build_model

FORMS = ("plain", "pool_first", "first_conv")
BUDGET_SECONDS = 0.06  # one timing window of a candidate
WINDOWS = 3  # windows per candidate, in alternating order; it keeps their median. The best of two 0.1 s windows
# read model A at two threads faster on a 2-core EPYC, where every longer comparison had one thread 1.2-1.3x
# faster: a second thread's rate swings with whatever else runs, and a best-of draws its lucky moments.
SLOW_STEP_SECONDS = 0.2  # a candidate whose step takes longer is rated from one timed step: WINDOWS passes of it
# would cost more than the ~2 s the timing may take (ResNet18 at batch 128 on two cores: 0.4 s fp32, 2 s bf16)
CLEARLY_SLOWER = 3.0  # a warm-up step this many times the fastest timed step so far: rated from it, not timed
BF16_MARGIN = 1.05  # bf16 rounds every product and shares cores badly (on a busy 2-core EPYC its conv steps
# ran at a quarter of fp32's): it is chosen only when it is at least this much faster than the best fp32
CACHE_FILE = "forms.json"
RULE = 2  # the timing rule's version, in every cache key: a choice an older rule made is made again (rule 1 took
# the best of two windows, which leaned towards two threads)
# Runnable threads per core (the 1-minute load average) above which a CPU counts as busy. A busy and a quiet
# machine each get their own choice: bf16 convolutions that trained 2x faster than fp32 on a quiet 2-core EPYC
# ran at a quarter of fp32's speed on the same machine while other work kept both cores full.
BUSY_LOAD = 1.0


def machine(device):
    """The CPU or GPU model by name: a choice is only reused on the same kind of machine."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def candidates(cfg, shape, device, native_bf16):
    """-> [(form, bf16)]: the structural forms this network has, in each precision the config allows."""
    forms = ["plain"]
    if cfg.model is None and cfg.layers is None:  # the classic rule's tricks
        forms.append("pool_first")
        if shape[0] == 1:
            forms.append("first_conv")
    if cfg.precision == "auto" and device.type in ("cpu", "cuda"):
        precisions = [False, True]
    else:
        precisions = [by_rule(cfg, native_bf16)]
    return [(form, bf16) for form in forms for bf16 in precisions]


def by_rule(cfg, native_bf16):
    """bf16 when asked for, or when precision is auto and the hardware has it natively: the choice untimed."""
    return cfg.precision == "bf16" or (cfg.precision == "auto" and native_bf16)


def name(form, bf16):
    return f"{form}/{'bf16' if bf16 else 'fp32'}"


def busy(device):
    """Whether other work keeps this CPU's cores full now (a GPU's speed does not hang on it)."""
    if device.type != "cpu":
        return False
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1) > BUSY_LOAD
    except OSError:  # no load average on this system
        return False


def key(cfg, shape, classes, device, busy_now, threads=None):
    arch = {"channels": cfg.channels, "kernel_size": cfg.kernel_size, "layers": cfg.to_dict()["layers"]}
    threads = threads or torch.get_num_threads()
    parts = [machine(device), device.type, torch.__version__, RULE, threads, cfg.model, arch]
    parts += [list(shape), classes, cfg.batch_size, cfg.precision, "busy" if busy_now else "quiet"]
    return json.dumps(parts, sort_keys=True)


def read_cache(path):
    try:
        with open(path) as f:
            saved = json.load(f)
        return saved if isinstance(saved, dict) else {}
    except (OSError, ValueError):  # none yet, or a torn or foreign file: measured again
        return {}


def write_cache(path, entries):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(entries, f)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def stepper(cfg, shape, classes, form, bf16, images, labels, norm, device):
    """-> (one training step of this form on a fixed batch, images per step), warmed up."""
    from .train import make_optimizer

    model = build_model(cfg, shape, classes, form=form).to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    n = min(cfg.batch_size, len(images))
    x, y = images[:n], labels[:n]

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(infer.prepare(x, norm)).float()
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    return step, n, timed(step, device)  # the first step also builds the kernels: an overestimate


def timed(step, device):
    """Seconds one step takes."""
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def rate(step, n, device):
    """Images per second of the step, timed for about BUDGET_SECONDS (at least one step)."""
    sync(device)
    steps, start = 0, time.perf_counter()
    while steps < 1 or time.perf_counter() - start < BUDGET_SECONDS:
        step()
        steps += 1
    sync(device)
    return steps * n / (time.perf_counter() - start)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def choose(cfg, shape, classes, images, labels, norm, device, cache_dir, native_bf16, autotune=True):
    """-> {"form", "precision", "threads" (intra-op threads to train with, at most those allotted), "rates"
    ({candidate: images/s}; "<form>/<precision>/<n>t" at fewer threads), "measured" (timed now), "seconds",
    "autotune" (false when switched off), "busy" (chosen for a busy machine: see BUSY_LOAD)}."""
    allotted = torch.get_num_threads()
    if not autotune:
        bf16 = by_rule(cfg, native_bf16)
        return result("plain", "bf16" if bf16 else "fp32", allotted, {}, False, 0.0, autotune=False)
    options = candidates(cfg, shape, device, native_bf16)
    if len(options) == 1:  # nothing to choose between (a layer stack at a fixed precision)
        form, bf16 = options[0]
        return result(form, "bf16" if bf16 else "fp32", allotted, {}, False, 0.0)
    path = os.path.join(os.fspath(cache_dir), CACHE_FILE)
    busy_now = busy(device)
    entry_key = key(cfg, shape, classes, device, busy_now)
    saved, known = read_cache(path).get(entry_key), {name(*o) for o in options}
    if isinstance(saved, dict) and saved.get("choice") in known and isinstance(saved.get("rates"), dict):
        form, precision = saved["choice"].split("/")
        threads = saved.get("threads")
        threads = threads if isinstance(threads, int) and 1 <= threads <= allotted else allotted
        return result(form, precision, threads, saved["rates"], False, 0.0, busy=busy_now)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the run's RNG untouched
        measured, steppers = measure(cfg, shape, classes, options, images, labels, norm, device)
        final = fewer_threads(steppers, measured, device)
        # among the finalists where there was a final: they were timed against each other, interleaved
        best, threads = split(pick({k: measured[k] for k in final} if final else measured), allotted)
    rates = {label: round(r, 1) for label, r in measured.items()}
    try:
        os.makedirs(os.fspath(cache_dir), exist_ok=True)
        with data.exclusive(path + ".lock"):  # two workers timing at once: neither entry is lost
            entries = read_cache(path)
            entries[entry_key] = {"choice": best, "threads": threads, "rates": rates}
            write_cache(path, entries)
    except OSError:  # a read-only cache folder: the choice still holds for this run
        pass
    form, precision = best.split("/")
    return result(form, precision, threads, rates, True, time.perf_counter() - started, busy=busy_now)


def measure(cfg, shape, classes, options, images, labels, norm, device):
    """-> ({candidate: images/s}, {candidate: (step, images per step, slow)}). Each is warmed up by one
    step; one clearly slower than the fastest so far is rated from that step, one slow in its timed step from
    that step; the rest are timed in WINDOWS passes."""
    rates, seconds, steppers = {}, {}, {}
    for option in options:
        label = name(*option)
        step, n, warm = stepper(cfg, shape, classes, *option, images, labels, norm, device)
        if seconds and warm > CLEARLY_SLOWER * min(seconds.values()):
            rates[label] = n / warm
            continue
        seconds[label] = timed(step, device)
        rates[label] = n / seconds[label]
        steppers[label] = (step, n, seconds[label] > SLOW_STEP_SECONDS)
    passes({k: v for k, v in steppers.items() if not v[2]}, rates, device)
    return rates, steppers


def passes(steppers, rates, device, threads=None):
    """WINDOWS timing passes in alternating order (a slow moment on a shared machine hits both ends); each
    candidate's rate is the median of its windows in these passes, so every rate compared rests on as many
    windows. A change of thread count is followed by one untimed step (its kernels at that count).
    `threads`: {label: intra-op threads to time it with}."""
    allotted = torch.get_num_threads()
    windows = {label: [] for label in steppers}
    try:
        for round_ in range(WINDOWS if len(steppers) > 1 else 0):
            for label in list(steppers) if round_ % 2 == 0 else list(steppers)[::-1]:
                step, n = steppers[label][:2]
                count = (threads or {}).get(label, allotted)
                if count != torch.get_num_threads():
                    torch.set_num_threads(count)
                    step()
                windows[label].append(rate(step, n, device))
    finally:
        torch.set_num_threads(allotted)
    for label, got in windows.items():
        if got:
            rates[label] = sorted(got)[len(got) // 2]


def fewer_threads(steppers, rates, device):
    """The final: the fastest fp32 and the fastest bf16 form timed again at fewer intra-op threads (one, and
    half those allotted) and, interleaved with those, afresh at the allotted count. Small convolutions gain
    little from a second thread, and where idle threads sleep (the workers' OMP_WAIT_POLICY) or the machine is
    busy, they can lose half their speed to it. A slow form is rated at each count from one step after a
    warm-up step. Adds "<form>/<precision>/<n>t" rates; -> the finalists' labels ([] on a GPU or one thread)."""
    allotted = torch.get_num_threads()
    if device.type != "cpu" or allotted < 2:
        return []
    counts = sorted({1, allotted // 2} - {allotted})
    tops = {pick({k: v for k, v in rates.items() if k.endswith(p) and k in steppers}) for p in ("/fp32", "/bf16")}
    timing, threads = {}, {}
    try:
        for label in sorted(tops - {None}):
            step, n, slow = steppers[label]
            if not slow:  # timed again beside its fewer-thread self
                timing[label] = steppers[label]
            for count in counts:
                if slow:
                    torch.set_num_threads(count)
                    timed(step, device)  # warm-up: the kernels at this thread count
                    rates[f"{label}/{count}t"] = n / timed(step, device)
                else:  # passes warms it up at each change of thread count
                    timing[f"{label}/{count}t"], threads[f"{label}/{count}t"] = steppers[label], count
    finally:
        torch.set_num_threads(allotted)
    passes(timing, rates, device, threads)
    return [label for label in rates if label in tops or label.rsplit("/", 1)[0] in tops]


def pick(rates):
    """The fastest candidate (None of none); a bf16 one only if it beats the best fp32 by BF16_MARGIN."""
    if not rates:
        return None
    best = max(rates, key=rates.get)
    fp32 = [label for label in rates if "/fp32" in label]
    if "/bf16" in best and fp32:
        best_fp32 = max(fp32, key=rates.get)
        if rates[best] < BF16_MARGIN * rates[best_fp32]:
            return best_fp32
    return best


def split(label, allotted):
    """ "plain/bf16/1t" -> ("plain/bf16", 1); "plain/bf16" -> ("plain/bf16", allotted)."""
    parts = label.split("/")
    return "/".join(parts[:2]), int(parts[2].removesuffix("t")) if len(parts) > 2 else allotted


def result(form, precision, threads, rates, measured, seconds, autotune=True, busy=False):
    return {
        "form": form,
        "precision": precision,
        "threads": threads,
        "rates": rates,
        "measured": measured,
        "seconds": round(seconds, 3),
        "autotune": autotune,
        "busy": busy,
    }
