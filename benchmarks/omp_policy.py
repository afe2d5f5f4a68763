"""Prototype: does OMP_WAIT_POLICY=PASSIVE protect the engine's loop from a busy machine?

libgomp's default lets idle OpenMP threads spin; on a shared, oversubscribed machine a
spinning or descheduled thread stalls every small op of model A's step. Each round starts
one child process per policy (the variable must be set before torch loads), which trains
model A with the engine's loop (Trainer.train_epoch, all cores) and reports its own
images/s; child start-up is excluded. Policies alternate order each round.
"""

import os
import subprocess
import sys

from benchmarks.common import ROOT, interleave, loadavg, median, parser, ratios, write_section

CHILD = """
import sys
from benchmarks.common import DATA_DIR, EngineLoop
from cnn import data
from cnn.config import RunConfig
images, labels = data.load("mnist", DATA_DIR, train=True)
loop = EngineLoop(RunConfig())
loop.round(images, labels, 5)
print(loop.round(images, labels, int(sys.argv[1])))
"""


def child(policy, steps):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = args.rounds or (2 if args.quick else 6)
    steps = 8 if args.quick else 40
    results = interleave({"default": lambda: child(None, steps), "passive": lambda: child("PASSIVE", steps)}, rounds)
    gain = median(ratios(results, "passive", "default"))
    lines = [
        f"Model A, engine loop, all cores, {rounds} alternating rounds of {steps} batches, one fresh process per "
        f"measurement (load average at the end {loadavg():.2f}).",
        "",
        "| OMP_WAIT_POLICY | median images/s | per round |",
        "|---|---|---|",
        *(
            f"| {name} | {median(results[name]):.0f} | " + ", ".join(f"{v:.0f}" for v in results[name]) + " |"
            for name in ("default", "passive")
        ),
        f"| **passive / default** | **{gain:.2f}x** | "
        + ", ".join(f"{v:.2f}" for v in ratios(results, "passive", "default"))
        + " |",
        "",
    ]
    write_section("omp_policy (prototype)", lines, args)


if __name__ == "__main__":
    main()
