"""Shared helpers for the ratio benchmarks: machine facts, medians, engine rounds, RESULTS.md.

Every benchmark measures a candidate against a baseline in the same run, in
alternating rounds, and reports medians: this machine is shared and noisy.
"""

import argparse
import datetime
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cnn.config import PRESETS, RunConfig

ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = Path(os.environ.get("CNN_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# decoded CIFAR-10 (and any image dataset) for the benchmarks: never inside the data folder
CACHE_DIR = Path(os.environ.get("CNN_CACHE_DIR") or Path(tempfile.gettempdir()) / "cnn-bench-cache")


@dataclass(frozen=True)
class Network:
    """A network the speed benchmarks (form_choice, compile) train through the engine's loop."""

    title: str  # its heading in RESULTS.md
    fields: dict  # RunConfig fields beyond the defaults
    dataset: str
    shape: tuple  # one image (C, H, W)
    steps: int  # batches a round
    run_images: int  # images a default run trains: epochs x training set


NETWORKS = {
    "classic": Network("model A (classic 16-32-64), MNIST", {}, "mnist", (1, 28, 28), 40, 3 * 60_000),
    "lab": Network(
        PRESETS["lab"]["label"],
        {**PRESETS["lab"]["values"], "batch_size": 128, "augment": {"crop": 4, "flip": True}},
        "cifar10",
        (3, 32, 32),
        12,
        10 * 50_000,
    ),
}


def config(network, precision="auto"):
    """The RunConfig of NETWORKS[network] at `precision`."""
    net = NETWORKS[network]
    return RunConfig(dataset=net.dataset, **net.fields, precision=precision)


def network_data(network):
    """-> (train images uint8 (N, C, H, W), train labels, Norm) of NETWORKS[network]'s dataset."""
    from cnn.datasets import open_dataset

    found = open_dataset(NETWORKS[network].dataset, DATA_DIR, cache_dir=CACHE_DIR)
    return found.train_images, found.train_labels, found.norm


def free_port():
    """A port on 127.0.0.1 that nothing listens on now (for a benchmark's own server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc, url, what="the server"):
    """Waits until the server.py started as `proc` answers at `url` (at most 90 s); raises if it exits first."""
    import requests

    deadline = time.time() + 90
    while True:
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{what} did not start within 90 s; see its log")
        try:
            if requests.get(url + "/api/runs", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)


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


def cpu_facts():
    """-> (CPU model name, its flags): /proc/cpuinfo where there is one."""
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
    return cpu, flags


def gpu_name(device):
    """The CUDA device's name when `device` is one, else None."""
    import torch

    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


def machine(device="cpu"):
    """One line of facts about where this process runs: what a section's figures depend on."""
    import torch

    from cnn.train import native_bf16

    cpu, flags = cpu_facts()
    # avx2 and avx512_bf16 / amx decide the kernels oneDNN runs and whether bf16 is native (cnn.train.native_bf16)
    wanted = ("avx2", "avx512_bf16", "amx_bf16", "amx_tile")
    has = ", ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted)
    if gpu_name(device):
        gpu = f"GPU: {gpu_name(device)} (used)"
    else:
        gpu = f"GPU: {torch.cuda.get_device_name(0)} (not used)" if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} logical cores, CPU flags: {has}, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), {gpu}, {torch.get_num_threads()} torch threads, "
        f"native bf16: {native_bf16(torch.device('cpu'))}, Python {platform.python_version()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', 'unset')}"
    )


def kind_key(cpu, cores, flags, gpu=None):
    """A machine kind, short: "AMD EPYC, 2 cores, AVX512-BF16" (the best of AMX, AVX512-BF16, AVX2 it has),
    with the GPU's name when the run used one. RESULTS.md keeps the latest figures of each kind."""
    cpu = re.sub(r"\((R|TM|tm)\)|\bCPU\b|@.*|\d+-Core Processor|\bProcessor\b", "", cpu)
    cpu = " ".join(cpu.split())
    if "amx_tile" in flags:
        level = "AMX"
    elif "avx512_bf16" in flags:
        level = "AVX512-BF16"
    elif "avx2" in flags:
        level = "AVX2"
    else:  # no x86 flags known (Apple silicon, ARM): its architecture
        level = "no AVX2" if platform.machine().lower() in ("x86_64", "amd64") and flags else platform.machine()
    key = f"{cpu}, {cores} cores, {level}"
    return f"{key}, {gpu}" if gpu else key


def machine_kind(device="cpu"):
    cpu, flags = cpu_facts()
    return kind_key(cpu, os.cpu_count(), flags, gpu_name(device))


def kind_of_machine_line(line):
    """The machine kind a section's "- machine: ..." line names, for sections written before RESULTS.md kept
    one block per kind. Older lines named no CPU flags (or not avx2): torch's CPU capability (AVX2, AVX512)
    implies avx2, and native bf16 on these EPYCs meant avx512_bf16."""
    found = re.search(r"machine: (.+?), (\d+) logical cores, (.*)", line)
    if not found:
        return None
    cpu, cores, rest = found.group(1), int(found.group(2)), found.group(3)
    listed = re.search(r"CPU flags: (.*?), torch ", rest)
    flags = [] if not listed or listed.group(1).startswith("none of") else listed.group(1).split(", ")
    if re.search(r"torch \S+ \(AVX2|torch \S+ \(AVX512", rest):
        flags.append("avx2")
    if not listed and "native bf16: True" in rest:
        flags.append("avx512_bf16")
    gpu = re.search(r"GPU: (.+?) \(used\)", rest)
    return kind_key(cpu, cores, flags, gpu.group(1) if gpu else None)


def command():
    return " ".join([".venv/bin/python", "-m", f"benchmarks.{Path(sys.argv[0]).stem}", *sys.argv[1:]])


def verdict(ok):
    return "PASS" if ok else "FAIL"


def write_section(name, lines, args, device="cpu", path=None):
    """Write `lines` as this machine kind's block of this benchmark's section of RESULTS.md: a run replaces
    its own kind's latest figures and keeps every other kind's. Prints the block; --quick and --no-write
    leave the file alone. `device`: where the run trained (a CUDA device puts the GPU in the kind)."""
    kind = machine_kind(device)
    header = [
        f"### {kind}",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {machine(device)}",
        f"- command: `{command()}`",
        f"- load average at the end (1 min): {loadavg():.2f}",
        "",
    ]
    start, end = kind_markers(name, kind)
    block = "\n".join([start, *header, *lines, end])
    print(block)
    if args.no_write or args.quick:
        return
    path = path or RESULTS
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    path.write_text(merge_section(text, name, kind, block))


def kind_markers(name, kind):
    return f"<!-- {name} @ {kind}:start -->", f"<!-- {name} @ {kind}:end -->"


def merge_section(text, name, kind, block):
    """RESULTS.md's `text` with `block` as machine `kind`'s block of section `name`, between the section's
    markers: that kind's old block replaced in place, a new kind's appended, other kinds' left as they were.
    A section from before the per-kind layout (one "## name" body, no blocks) becomes the block of the kind
    its machine line names."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        return text.rstrip("\n") + "\n\n" + "\n".join([start, f"## {name}", "", block, end]) + "\n"
    before, rest = text.split(start, 1)
    body, after = rest.split(end, 1)
    body = body.strip("\n")
    if f"<!-- {name} @ " not in body:  # the old layout: the whole body is one machine's figures
        old = body.removeprefix(f"## {name}").strip("\n")
        line = next((ln for ln in old.splitlines() if ln.startswith("- machine:")), "")
        old_kind = kind_of_machine_line(line) or "unknown machine"
        old_start, old_end = kind_markers(name, old_kind)
        body = "\n".join([f"## {name}", "", old_start, f"### {old_kind}", "", old, old_end]) if old else f"## {name}"
    own_start, own_end = kind_markers(name, kind)
    if own_start in body and own_end in body:
        head, tail = body.split(own_start, 1)
        body = head + block + tail.split(own_end, 1)[1]
    else:
        body = body.rstrip("\n") + "\n\n" + block
    return before + start + "\n" + body + "\n" + end + after


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
