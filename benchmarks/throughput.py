"""Target 1: model A's training throughput with the engine's loop vs a plain DataLoader loop and a plain in-memory one.

Candidate: cnn.train's own hot loop (Trainer.train_epoch: in-memory uint8 batches,
channels_last, fused Adam) in the form and precision a run picks on this machine (cnn/forms.py
times plain, pool-before-ReLU and FirstConv's weight gradient, in fp32 and, where native, bf16),
in a process with the environment the server gives its workers
(workers.WORKER_ENV: OMP_WAIT_POLICY=PASSIVE and glibc's allocator keeping freed memory).
Baseline: torchvision MNIST with ToTensor + Normalize through a DataLoader (num_workers=0),
fp32, the same architecture written as a tutorial writes it, default Adam, same batch, in a
process with the caller's environment less GLIBC_TUNABLES, plus OMP_WAIT_POLICY=PASSIVE (this
shared machine's noise would swamp it otherwise). A third process runs the plain loop in the workers'
environment, to show how much of the gain is the environment and how much the loop.
Second baseline, the fair "no tricks" one: the plain in-memory network, model A written plainly (the
tutorial's conv -> ReLU -> pool, channels_last, the whole training set in memory as a normalised float
tensor, shuffled index batches, no DataLoader, fused Adam, same batch, torch's default threads), in fp32
and, where bf16 is native (where the engine may pick it), in bf16 autocast, each in a process with the
workers' environment, as the engine's: the ratio then holds only what the engine's loop and its measured
choice of form add. Target: at least 1.0x its faster precision.
Each loop lives in its own process, as a script and a worker do; the parent runs them in
alternating rounds and times a large fp32 and bf16 matmul in each round, so the fraction
of matmul peak is measured under the same noise.
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.common import (
    DATA_DIR,
    Child,
    EngineLoop,
    engine_choice,
    interleave,
    median,
    parser,
    plain_env,
    ratios,
    serve,
    table_row,
    verdict,
    write_section,
)
from cnn import data
from cnn.config import RunConfig
from cnn.models import POOLED_LAYERS
from cnn.train import native_bf16
from cnn.workers import WORKER_ENV

TARGET = 2.5
FAIR_TARGET = 1.0  # against the plain in-memory network: what measuring first guarantees


def forward_macs(cfg):
    """Multiply-accumulates of one image's forward pass: convs (same padding) + the linear head."""
    macs, side, in_ch, k = 0, 28, 1, cfg.kernel_size
    for i, out_ch in enumerate(cfg.channels):
        macs += side * side * out_ch * in_ch * k * k
        if i < 2:
            side //= 2
        in_ch = out_ch
    return macs + in_ch * side * side * 10


def tutorial_model(cfg):
    """The same architecture as the engine's model, written as a tutorial writes it:
    conv -> ReLU -> pool, out-of-place ReLU; the engine's own layer choices are part of its speed."""
    layers, in_ch = [], 1
    for i, out_ch in enumerate(cfg.channels):
        layers += [nn.Conv2d(in_ch, out_ch, cfg.kernel_size, padding=cfg.kernel_size // 2), nn.ReLU()]
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        in_ch = out_ch
    side = 28 // 2 ** min(len(cfg.channels), POOLED_LAYERS)  # same-padded convs; a 2x2 pool halves the side
    layers += [nn.Flatten(), nn.Linear(in_ch * side**2, 10)]
    return nn.Sequential(*layers)


class PlainLoop:
    """What a tutorial writes: DataLoader + ToTensor/Normalize, fp32, contiguous."""

    def __init__(self, cfg, seed=0):
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        ds = datasets.MNIST(root=str(DATA_DIR), train=True, download=True, transform=tf)
        self.loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, num_workers=0)
        self.batches = iter(self.loader)
        torch.manual_seed(seed)
        self.model = tutorial_model(cfg)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def round(self, steps):
        self.model.train()
        n, start = 0, time.perf_counter()
        for _ in range(steps):
            x, y = self.next_batch()
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            n += len(y)
        loss.item()
        return n / (time.perf_counter() - start)


class InMemoryLoop:
    """Model A written plainly with the habits anyone can copy: the tutorial's network, channels_last, the
    training set held in memory as one normalised float tensor, shuffled index batches, fused Adam; fp32 or
    bf16 autocast."""

    def __init__(self, cfg, bf16, seed=0):
        images, labels = data.load("mnist", DATA_DIR, train=True)  # uint8 (N, 28, 28), int64 (N,)
        self.images = ((images.float() / 255 - 0.1307) / 0.3081).unsqueeze(1)  # (N, 1, 28, 28)
        self.labels, self.batch, self.bf16 = labels, cfg.batch_size, bf16
        self.shuffle = torch.Generator().manual_seed(seed)
        self.order, self.at = torch.randperm(len(labels), generator=self.shuffle), 0
        torch.manual_seed(seed)
        self.model = tutorial_model(cfg).to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=True)

    def next_batch(self):
        if self.at + self.batch > len(self.order):  # a new epoch: a new order
            self.order, self.at = torch.randperm(len(self.order), generator=self.shuffle), 0
        idx = self.order[self.at : self.at + self.batch]
        self.at += self.batch
        return self.images[idx].contiguous(memory_format=torch.channels_last), self.labels[idx]

    def round(self, steps):
        self.model.train()
        n, start = 0, time.perf_counter()
        for _ in range(steps):
            x, y = self.next_batch()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            n += len(y)
        loss.item()
        return n / (time.perf_counter() - start)


def worker_env_line():
    names = ("OMP_WAIT_POLICY", "GLIBC_TUNABLES")
    return ", ".join(f"{n}={WORKER_ENV[n]}" for n in names if n in WORKER_ENV)


def matmul_gflops(dtype, size, repeats):
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b  # warm-up: picks the kernel
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * size**3 / (time.perf_counter() - start) / 1e9


def child(kind):
    """One loop in its own process: each request `steps` -> images/s."""
    cfg = RunConfig()
    if kind == "engine":
        images, labels = data.load("mnist", DATA_DIR, train=True)
        cfg, form, _ = engine_choice(cfg, (1, 28, 28), 10, images, labels, data.norm_of("mnist"))
        engine = EngineLoop(cfg, form=form)
        precision = f"{form}/{cfg.precision}"  # what a run on this machine trains

        def step(n):
            return engine.round(images, labels, n)
    elif kind.startswith("memory"):  # memory-fp32, memory-bf16
        precision = kind.removeprefix("memory-")
        step = InMemoryLoop(cfg, bf16=precision == "bf16").round
    else:
        plain, precision = PlainLoop(cfg), "fp32"
        step = plain.round
    step(5)  # warm-up: oneDNN primitives, allocator
    serve(f"{precision} {torch.get_num_threads()}", lambda line: f"{step(int(line)):.3f}")


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", choices=["engine", "plain", "memory-fp32", "memory-bf16"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child)
    rounds = args.rounds or (2 if args.quick else 9)
    steps = 8 if args.quick else 40
    cfg = RunConfig()
    # the in-memory network in each precision the engine weighs here (bf16 only where it is native)
    memory = ["memory-fp32", "memory-bf16"] if native_bf16(torch.device("cpu")) else ["memory-fp32"]
    loops = {"engine": WORKER_ENV, "plain": plain_env(), "plain_tuned": WORKER_ENV} | dict.fromkeys(memory, WORKER_ENV)
    children = {}
    try:
        for name, env in loops.items():
            children[name] = Child("benchmarks.throughput", name.removesuffix("_tuned"), env)
        asks = {name: (lambda c=c: float(c.ask(steps))) for name, c in children.items()}
        results = interleave(
            asks
            | {
                "fp32_gflops": lambda: matmul_gflops(torch.float32, 2048, 3 if args.quick else 8),
                "bf16_gflops": lambda: matmul_gflops(torch.bfloat16, 256, 3),
            },
            rounds,
        )
    finally:
        for c in children.values():
            c.close()
    engine, plain = children["engine"], children["plain"]
    speedup = median(ratios(results, "engine", "plain"))
    fair = max(memory, key=lambda name: median(results[name]))  # the in-memory network's faster precision
    fair_speedup = median(ratios(results, "engine", fair))
    fair_label = "bf16 autocast" if fair == "memory-bf16" else "fp32"
    flops_per_image = 3 * 2 * forward_macs(cfg)  # training ~ 3x forward (forward, two backward matmuls)
    fraction = [e * flops_per_image / 1e9 / p for e, p in zip(results["engine"], results["fp32_gflops"], strict=True)]
    precision, engine_threads = engine.ready.split()  # what the child said when it was ready
    lines = [
        f"Model A (channels 16-32-64, k=3, batch 64, adam), {rounds} alternating rounds of {steps} batches each, "
        f"engine form (as a run picks it, cnn/forms.py): {precision}, "
        f"torch threads: {engine_threads} (engine), {plain.ready.split()[1]} (plain), "
        f"{children['memory-fp32'].ready.split()[1]} (in-memory). Environments: the engine, the in-memory "
        f"network and the tuned plain loop run in the workers' ({worker_env_line()}); the plain DataLoader loop "
        "in OMP_WAIT_POLICY=PASSIVE only.",
        "",
        "| measure | median | per round |",
        "|---|---|---|",
        table_row("engine loop, images/s", results["engine"]),
        table_row("plain DataLoader loop, images/s", results["plain"]),
        table_row("plain DataLoader loop in the workers' environment, images/s", results["plain_tuned"]),
        *(
            table_row(f"plain in-memory network, {name.removeprefix('memory-')}, images/s", results[name])
            for name in memory
        ),
        table_row(
            "**speedup engine / plain** (median of per-round ratios)",
            ratios(results, "engine", "plain"),
            "{:.2f}",
            f"**{speedup:.2f}x**",
        ),
        table_row(
            "speedup engine / plain in the workers' environment (the loop's own share)",
            ratios(results, "engine", "plain_tuned"),
            "{:.2f}",
            f"{median(ratios(results, 'engine', 'plain_tuned')):.2f}x",
        ),
        table_row(
            f"**speedup engine / plain in-memory network** ({fair_label}, its faster precision here)",
            ratios(results, "engine", fair),
            "{:.2f}",
            f"**{fair_speedup:.2f}x**",
        ),
        table_row("fp32 matmul 2048², GFLOP/s", results["fp32_gflops"], "{:.1f}"),
        table_row("bf16 matmul 256², GFLOP/s", results["bf16_gflops"], "{:.2f}"),
        f"| engine training GFLOP/s (at {flops_per_image / 1e6:.2f} MFLOP/image) | "
        f"{median(results['engine']) * flops_per_image / 1e9:.1f} | |",
        table_row("**fraction of fp32 matmul peak**", fraction, "{:.1%}", f"**{median(fraction):.1%}**"),
        "",
        f"FLOPs: forward {forward_macs(cfg):,} MACs/image = {2 * forward_macs(cfg) / 1e6:.2f} MFLOP; "
        f"training ~3x forward = {flops_per_image / 1e6:.2f} MFLOP/image.",
        "",
        f"Target: engine >= {TARGET}x plain: **{verdict(speedup >= TARGET)}** ({speedup:.2f}x).",
        "",
        f"Target: engine >= {FAIR_TARGET:.1f}x the plain in-memory network ({fair_label}): "
        f"**{verdict(fair_speedup >= FAIR_TARGET)}** ({fair_speedup:.2f}x).",
        "",
    ]
    write_section("throughput", lines, args)


if __name__ == "__main__":
    main()
