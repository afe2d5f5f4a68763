"""CIFAR-10 training throughput, batch 128, random crop (padding 4) + flip: the engine's loop vs torchvision's.

Candidate: the engine's own hot loop (Trainer.train_epoch via common.EngineLoop) on the in-memory uint8
images, crop and flip done on whole batches (cnn/augment.py), in a process with the environment the server
gives its workers: one process in fp32, one in bf16. The ratio judged is that of the precision a run picks
on this machine (cnn/forms.py, timed afresh here before the rounds); the other is shown beside it.
Baseline: the usual torchvision loop on the same model (cnn.models.build_model): a Dataset over the same
uint8 images that makes a PIL image per sample, as torchvision.datasets.CIFAR10 does, RandomCrop(32,
padding=4) + RandomHorizontalFlip + ToTensor + Normalize(the per-channel mean/std), DataLoader(shuffle=True),
fp32, torch.optim.Adam. num_workers 0 and 2 run in processes of their own (OMP_WAIT_POLICY=PASSIVE, as in
throughput.py); the faster of the two (by median) is the baseline.
Each loop lives in its own process; the parent alternates them round by round. The lab network, then
ResNet18.
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from benchmarks.common import (
    CACHE_DIR,
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
from cnn.config import PRESETS, RunConfig
from cnn.datasets import open_dataset
from cnn.models import build_model, mac_count
from cnn.workers import WORKER_ENV

TARGET = 2.0  # the lab network: engine >= 2x the torchvision loop
SHAPE, CLASSES = (3, 32, 32), 10
NETWORKS = ("lab", "resnet18")
STEPS = {"lab": 20, "resnet18": 6}  # batches a round: a few seconds each on 2 cores (bf16 ResNet18: a minute)
ROUNDS = {"lab": 9, "resnet18": 5}
LOADERS = {"plain0": 0, "plain2": 2}  # candidate name -> DataLoader num_workers


def config(network, precision="auto"):
    return RunConfig(
        dataset="cifar10",
        **PRESETS[network]["values"],
        batch_size=128,
        augment={"crop": 4, "flip": True},
        precision=precision,
    )


class PilImages(Dataset):
    """What torchvision.datasets.CIFAR10 does: (N, H, W, C) uint8 kept as numpy, one PIL image per sample."""

    def __init__(self, images, labels, transform):
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, 32, 32, 3)
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


class TorchvisionLoop:
    """The usual loop: DataLoader + per-sample PIL transforms, fp32, contiguous tensors, default Adam."""

    def __init__(self, network, found, num_workers, seed=0):
        tf = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(found.norm.mean, found.norm.std),
            ]
        )
        ds = PilImages(found.train_images, found.train_labels, tf)
        self.loader = DataLoader(
            ds, batch_size=128, shuffle=True, num_workers=num_workers, persistent_workers=num_workers > 0
        )
        # batches the workers have ready when a round starts (made while other loops ran): trained untimed
        self.lead = num_workers * 2  # DataLoader's prefetch_factor is 2 per worker
        self.batches = iter(self.loader)
        torch.manual_seed(seed)
        self.model = build_model(config(network), SHAPE, CLASSES)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self):
        x, y = self.next_batch()
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return len(y)

    def round(self, steps):
        self.model.train()
        for _ in range(self.lead):
            self.step()
        n, start = 0, time.perf_counter()
        for _ in range(steps):
            n += self.step()
        return n / (time.perf_counter() - start)


def child(arg):
    """One loop in its own process (arg: `<kind>:<network>`); each request `steps` -> images/s."""
    kind, network = arg.split(":")
    found = open_dataset("cifar10", DATA_DIR, cache_dir=CACHE_DIR)
    if kind.startswith("engine"):
        cfg = config(network, kind.removeprefix("engine_"))
        engine = EngineLoop(cfg, norm=found.norm, shape=SHAPE, classes=CLASSES, form="plain")
        precision = "bf16" if engine.trainer.bf16 else "fp32"

        def step(n):
            return engine.round(found.train_images, found.train_labels, n)
    else:
        plain, precision = TorchvisionLoop(network, found, LOADERS[kind]), "fp32"
        step = plain.round
    step(3)  # warm-up: oneDNN primitives, allocator, DataLoader workers
    serve(f"{precision} {torch.get_num_threads()}", lambda line: f"{step(int(line)):.3f}")


def measure(network, rounds, steps):
    """-> ({candidate: [images/s per round]}, {candidate: what it said when ready})."""
    envs = {"engine_fp32": WORKER_ENV, "engine_bf16": WORKER_ENV, "plain0": plain_env(), "plain2": plain_env()}
    children = {}
    try:
        for kind, env in envs.items():
            children[kind] = Child("benchmarks.cifar", f"{kind}:{network}", env)
        asks = {kind: (lambda c=c: float(c.ask(steps))) for kind, c in children.items()}
        results = interleave(asks, rounds, log=lambda line: print(f"{network} {line}", flush=True))
    finally:
        for c in children.values():
            c.close()
    return results, {kind: c.ready for kind, c in children.items()}


def choice_line(chosen):
    rates = ", ".join(f"{k} {v:.0f}" for k, v in chosen["rates"].items())
    how = f"timed: {rates} images/s" if rates else "not timed: one candidate"
    return f"{chosen['form']}/{chosen['precision']}, {chosen['threads']} threads ({how})"


def section(network, results, ready, chosen, rounds, steps):
    """-> (table lines, speedup of the engine's choice over the faster torchvision loop)."""
    base = max(LOADERS, key=lambda kind: median(results[kind]))
    picked = f"engine_{chosen['precision']}"
    speedup = median(ratios(results, picked, base))
    macs = mac_count(config(network), SHAPE, CLASSES)
    gflops = median(results[picked]) * 3 * 2 * macs / 1e9  # training ~ 3x the forward pass
    rows = []
    for kind in ("engine_fp32", "engine_bf16"):
        mark = " (the engine's choice)" if kind == picked else ""
        r = ratios(results, kind, base)
        label = f"speedup engine {kind[7:]}{mark} / torchvision (num_workers={LOADERS[base]}, the faster)"
        middle = f"**{median(r):.2f}x**" if mark else f"{median(r):.2f}x"
        rows.append(table_row(f"**{label}**" if mark else label, r, "{:.2f}", middle))
    lines = [
        f"### {PRESETS[network]['label']}",
        "",
        f"{macs:,} MACs per image; {rounds} alternating rounds of {steps} batches of 128; torch threads "
        f"{ready['engine_fp32'].split()[1]} (engine), {ready['plain0'].split()[1]} (torchvision loops). "
        f"The engine's choice on this machine: {choice_line(chosen)}.",
        "",
        "| measure | median | per round |",
        "|---|---|---|",
        table_row("engine loop, fp32, images/s", results["engine_fp32"]),
        table_row("engine loop, bf16, images/s", results["engine_bf16"]),
        table_row("torchvision loop, num_workers=0, images/s", results["plain0"]),
        table_row("torchvision loop, num_workers=2, images/s", results["plain2"]),
        *rows,
        f"| engine training GFLOP/s in its choice (3 x 2 x MACs per image) | {gflops:.1f} | |",
        "",
    ]
    return lines, speedup


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    args = p.parse_args()
    if args.child:
        return child(args.child)
    found = open_dataset("cifar10", DATA_DIR, cache_dir=CACHE_DIR)  # the first decode (~20 s) happens here
    lines = [
        "Engine: Trainer.train_epoch on in-memory uint8 tensors, crop 4 + flip on whole batches, in the workers' "
        "environment. Torchvision loop: a PIL image per sample, RandomCrop(32, padding=4) + RandomHorizontalFlip "
        "+ ToTensor + Normalize, DataLoader(shuffle=True), the same model, fp32, torch.optim.Adam; with "
        "num_workers=2, the batches its workers had ready when a round began are trained untimed first.",
        "",
    ]
    speedups = {}
    for network in args.networks:
        steps = 3 if args.quick else STEPS[network]
        rounds = args.rounds or (2 if args.quick else ROUNDS[network])
        images, labels = found.train_images, found.train_labels
        _, _, chosen = engine_choice(config(network), SHAPE, CLASSES, images, labels, found.norm)
        results, ready = measure(network, rounds, steps)
        table, speedups[network] = section(network, results, ready, chosen, rounds, steps)
        lines += table
    if "lab" in speedups:
        lines.append(
            f"Target: the lab network's engine loop (its choice of precision) >= {TARGET:.0f}x the torchvision loop: "
            f"**{verdict(speedups['lab'] >= TARGET)}** ({speedups['lab']:.2f}x)."
        )
    if "resnet18" in speedups:
        lines.append(f"ResNet18's ratio (no target): {speedups['resnet18']:.2f}x.")
    write_section("cifar", [*lines, ""], args)


if __name__ == "__main__":
    main()
