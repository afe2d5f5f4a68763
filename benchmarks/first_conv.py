"""Diagnostic: where FirstConv's own weight gradient beats torch's (the evidence for its gate).

For each case, two copies of the engine's loop (Trainer.train_epoch) train the same config in
alternating rounds in this process: one whose first layer takes FirstConv's backward, one
with torch's own nn.Conv2d. Ratios above 1 mean FirstConv's step is faster.
"""

import torch
from torch import nn

from benchmarks.common import DATA_DIR, EngineLoop, interleave, median, parser, ratios, write_section
from cnn import data, first_conv, models
from cnn.config import RunConfig

# (kernel, batch, threads)
CASES = [(3, 64, 2), (3, 64, 1), (5, 64, 2), (7, 64, 2), (3, 16, 2), (3, 512, 2)]


def forced_first_conv(on):
    """Build with FirstConv taking its own path in every case (on) or with plain nn.Conv2d (off)."""
    if not on:
        return nn.Conv2d

    class Always(first_conv.FirstConv):
        def forward(self, x):
            return first_conv._Conv.apply(x, self.weight, self.bias, self.padding)

    return Always


def one_case(images, labels, kernel, batch, threads, rounds):
    torch.set_num_threads(threads)
    cfg = RunConfig(kernel_size=kernel, batch_size=batch)
    loops = {}
    for name, on in (("first_conv", True), ("torch", False)):
        models.FirstConv = forced_first_conv(on)
        loops[name] = EngineLoop(cfg)
    models.FirstConv = first_conv.FirstConv
    steps = max(10, 2560 // batch)
    for loop in loops.values():
        loop.round(images, labels, 3)
    results = interleave({n: (lambda lp=lp: lp.round(images, labels, steps)) for n, lp in loops.items()}, rounds)
    return ratios(results, "first_conv", "torch")


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = args.rounds or (2 if args.quick else 9)
    images, labels = data.load("mnist", DATA_DIR, train=True)
    before = torch.get_num_threads()
    rows = []
    for kernel, batch, threads in CASES:
        r = one_case(images, labels, kernel, batch, threads, rounds)
        gated = first_conv.measured_faster(kernel, batch, threads)
        rows.append(
            f"| {kernel}x{kernel} | {batch} | {threads} | **{median(r):.3f}** | "
            + ", ".join(f"{v:.2f}" for v in r)
            + f" | {'FirstConv' if gated else 'torch'} |"
        )
    torch.set_num_threads(before)
    lines = [
        f"Model A's channels, engine loop, {rounds} alternating rounds per case (images/s ratio, FirstConv's "
        "backward / torch's own).",
        "",
        "| kernel | batch | threads | median ratio | per round | the gate picks |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    write_section("first_conv", lines, args)


if __name__ == "__main__":
    main()
