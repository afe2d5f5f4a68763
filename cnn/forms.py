"""Measure, then choose: the fast form of a run's network, timed where it runs.

A form is a way to compute the same function: "plain" (conv -> ReLU -> pool, as written), "pool_first" (the
classic rule with max-pool before its ReLU and the last ReLU after the flatten) and "first_conv" (that, with
FirstConv's faster weight gradient for a one-channel first layer), each in fp32 or, when precision is auto,
bf16. Which wins depends on the CPU (a trick that won 10-20% on an EPYC lost 10-13% on a Sapphire Rapids), so
the first run of a (machine, torch, architecture, shape, batch, threads) times a few steps of each and keeps
the fastest in <cache>/forms.json; later runs read it and time nothing.
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
BUDGET_SECONDS = 0.1  # timed steps per candidate and pass; two passes, alternating order
WARMUP_STEPS = 2  # the first step also builds the kernels: the guard below reads the second
MAX_STEP_SECONDS = 0.2  # a network whose step takes longer is not timed: the timing would cost more than ~2 s
CACHE_FILE = "forms.json"


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


def key(cfg, shape, classes, device):
    arch = {"channels": cfg.channels, "kernel_size": cfg.kernel_size, "layers": cfg.to_dict()["layers"]}
    parts = [machine(device), device.type, torch.__version__, torch.get_num_threads(), cfg.model, arch]
    parts += [list(shape), classes, cfg.batch_size, cfg.precision]
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
    for _ in range(WARMUP_STEPS):
        start = time.perf_counter()
        step()
        sync(device)
    return step, n, time.perf_counter() - start


def rate(step, n, _, device):
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
    """-> {"form", "precision", "rates" ({candidate: images/s}), "measured" (timed now), "seconds"}."""
    if not autotune:
        bf16 = by_rule(cfg, native_bf16)
        return result("plain", "bf16" if bf16 else "fp32", {}, False, 0.0)
    options = candidates(cfg, shape, device, native_bf16)
    path = os.path.join(os.fspath(cache_dir), CACHE_FILE)
    entry_key = key(cfg, shape, classes, device)
    saved, known = read_cache(path).get(entry_key), {name(*o) for o in options}
    if isinstance(saved, dict) and saved.get("choice") in known and isinstance(saved.get("rates"), dict):
        form, precision = saved["choice"].split("/")
        return result(form, precision, saved["rates"], False, 0.0)
    started, rates = time.perf_counter(), {}
    if len(options) > 1:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the run's RNG untouched
            steppers = {}
            for option in options:
                steppers[name(*option)] = stepper(cfg, shape, classes, *option, images, labels, norm, device)
                if steppers[name(*option)][2] > MAX_STEP_SECONDS:  # too slow to time: the rule decides
                    steppers = {}
                    break
            # two passes in alternating order: a slow moment on a shared machine hits both ends
            for round_ in range(2 if steppers else 0):
                for label in list(steppers) if round_ == 0 else list(steppers)[::-1]:
                    rates[label] = max(rates.get(label, 0.0), rate(*steppers[label], device))
    rates = {label: round(r, 1) for label, r in rates.items()}
    fallback = name("plain", by_rule(cfg, native_bf16))
    best = max(rates, key=rates.get) if rates else fallback if fallback in known else name(*options[0])
    try:
        os.makedirs(os.fspath(cache_dir), exist_ok=True)
        with data.exclusive(path + ".lock"):  # two workers timing at once: neither entry is lost
            entries = read_cache(path)
            entries[entry_key] = {"choice": best, "rates": rates}
            write_cache(path, entries)
    except OSError:  # a read-only cache folder: the choice still holds for this run
        pass
    form, precision = best.split("/")
    return result(form, precision, rates, True, time.perf_counter() - started)


def result(form, precision, rates, measured, seconds):
    return {"form": form, "precision": precision, "rates": rates, "measured": measured, "seconds": round(seconds, 3)}
