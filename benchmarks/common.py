"""Shared helpers for the ratio benchmarks: machine facts, medians, engine rounds, RESULTS.md.

Every benchmark measures a candidate against a baseline in the same run, in
alternating rounds, and reports medians: this machine is shared and noisy.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = Path(os.environ.get("CNN_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# decoded CIFAR-10 (and any image dataset) for the benchmarks: never inside the data folder
CACHE_DIR = Path(os.environ.get("CNN_CACHE_DIR") or Path(tempfile.gettempdir()) / "cnn-bench-cache")


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a few short rounds: checks the path, not the numbers")
    p.add_argument("--rounds", type=int, help="alternating rounds (overrides the default)")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    return p


def median(values):
    return statistics.median(values) if values else float("nan")


def table_row(label, values, fmt="{:.0f}", middle=None):
    """A results row: | label | median, or `middle` | every round's value |."""
    middle = fmt.format(median(values)) if middle is None else middle
    return f"| {label} | {middle} | " + ", ".join(fmt.format(v) for v in values) + " |"


def loadavg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return float("nan")


def machine():
    import torch

    from cnn.train import native_bf16

    cpu, flags = platform.processor() or platform.machine(), []
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                break
    except OSError:
        pass
    # what decides whether bf16 runs natively (cnn.train.native_bf16)
    wanted = ("avx512_bf16", "amx_bf16", "amx_tile")
    has = ", ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)
    return (
        f"{cpu}, {os.cpu_count()} logical cores, CPU flags: {has}, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} torch threads, "
        f"native bf16: {native_bf16(torch.device('cpu'))}, Python {platform.python_version()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', 'unset')}"
    )


def command():
    return " ".join([".venv/bin/python", "-m", f"benchmarks.{Path(sys.argv[0]).stem}", *sys.argv[1:]])


def verdict(ok):
    return "PASS" if ok else "FAIL"


def write_section(name, lines, args):
    """Replace this benchmark's section of RESULTS.md (kept between markers) with `lines`."""
    header = [
        f"## {name}",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- command: `{command()}`",
        f"- load average at the end (1 min): {loadavg():.2f}",
        "",
    ]
    block = "\n".join([f"<!-- {name}:start -->", *header, *lines, f"<!-- {name}:end -->"])
    print(block)
    if args.no_write or args.quick:
        return
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


class EngineLoop:
    """The engine's own hot loop (Trainer.train_epoch, with its standard plug-ins) on a slice of the data,
    one round at a time. It sets by hand what Trainer.setup would (model, optimizer, norm, generators),
    so a round times training only: no dataset is opened. MNIST's by default; pass `norm` and `shape` for
    another dataset. The network is built in `form` (cnn/forms.py) at cfg's precision: engine_choice()
    gives the pair a run would pick."""

    def __init__(
        self, cfg, emit=None, batch_hz=20.0, seed=0, norm=None, shape=(1, 28, 28), classes=10, form="first_conv"
    ):
        import torch

        from cnn import data
        from cnn.models import build_model
        from cnn.plugins import standard
        from cnn.train import Trainer, make_optimizer

        self.trainer = trainer = Trainer(cfg, str(DATA_DIR), "cpu", standard(emit, batch_hz=batch_hz))
        torch.manual_seed(seed)
        model = build_model(cfg, shape, classes, form=form)
        if trainer.device.type == "cpu":  # as Trainer.setup does
            model = model.to(memory_format=torch.channels_last)
        trainer.model = model
        trainer.optimizer = make_optimizer(cfg, model.parameters())
        trainer.norm = norm or data.norm_of("mnist")
        trainer.scheduler = None  # a schedule would change the rate between rounds, not the speed
        trainer.shuffle = torch.Generator().manual_seed(seed)
        trainer.augment_rng = torch.Generator().manual_seed(seed + 1)

    def round(self, images, labels, steps):
        """Train `steps` batches of uint8 images (N, C, H, W), or data.load's MNIST (N, 28, 28);
        -> images per second of training time."""
        trainer = self.trainer
        if images.dim() == 3:
            images = images.unsqueeze(1)  # a view: (N, 1, 28, 28)
        n = steps * trainer.cfg.batch_size
        trainer.images, trainer.labels, trainer.steps = images[:n], labels[:n], steps
        trainer.train_epoch(1)
        return n / trainer.epoch_seconds


def engine_choice(cfg, shape, classes, images, labels, norm):
    """What Trainer.setup picks for this config on this machine (cnn/forms.py), timed afresh (an empty
    cache), with the thread count it chose set in this process: -> (cfg at the chosen precision, the chosen
    form, forms.choose's answer with its rates)."""
    import torch

    from cnn import forms
    from cnn.train import native_bf16

    cpu = torch.device("cpu")
    if images.dim() == 3:
        images = images.unsqueeze(1)  # data.load's MNIST: (N, 1, 28, 28)
    with tempfile.TemporaryDirectory() as cache:
        chosen = forms.choose(cfg, shape, classes, images, labels, norm, cpu, cache, native_bf16(cpu))
    torch.set_num_threads(chosen["threads"])  # as Trainer.setup does: the chosen form's thread count
    return cfg.model_copy(update={"precision": chosen["precision"]}), chosen["form"], chosen


def interleave(candidates, rounds, log=print):
    """candidates: {name: () -> number}. Alternates the order each round; -> {name: [per round]}."""
    names = list(candidates)
    out = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            out[name].append(candidates[name]())
        log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n}={out[n][-1]:.1f}" for n in names) + f" load={loadavg():.2f}")
    return out


def ratios(results, top, bottom):
    return [a / b for a, b in zip(results[top], results[bottom], strict=True)]


def now():
    return time.perf_counter()


def plain_env():
    """The caller's environment without any malloc tuning, idle OpenMP threads sleeping: a baseline
    process (this shared machine's noise would swamp a spinning one)."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    return env | {"OMP_WAIT_POLICY": "PASSIVE"}


def serve(ready, answer):
    """Child side of a measuring process: says `ready`, then answers each stdin line with answer(line).
    Replies go out on a private descriptor: a library's stray print (a download message) goes to
    stderr and cannot break the exchange."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    replies.write(f"ready {ready}\n")
    for line in sys.stdin:
        replies.write(f"{answer(line.strip())}\n")


class Child:
    """Parent side: `python -m module --child arg` in its own environment, asked one line at a time."""

    def __init__(self, module, arg, env):
        self.name = f"{module} --child {arg}"
        cmd = [sys.executable, "-m", module, "--child", str(arg)]
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.reply().removeprefix("ready").strip()

    def reply(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} ended (exit code {self.proc.wait()}); see its stderr above")
        return line.strip()

    def ask(self, request):
        try:
            self.proc.stdin.write(f"{request}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died: reply() says so with its exit code
        return self.reply()

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait()
