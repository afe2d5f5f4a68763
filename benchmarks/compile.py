"""torch.compile on the engine's loop: its compile time, its gain, and the images a run must train to pay it back.

Model A on MNIST (batch 64) and the CIFAR-10 lab network (batch 128, crop 4 + flip), each in fp32 and bf16,
one thread (what cnn/forms.py picks for a lone run on this machine where idle threads sleep), in the workers'
environment. Eager: the engine's loop (common.EngineLoop) on the plain form. Compiled: the same with the model
wrapped in torch.compile (inductor), its cache in a fresh folder; its first round's extra time over a
steady round is the compile time. A second compiled process on the same cache folder gives the compile time
a second run of the same shape would pay. Then eager and compiled alternate round by round.
"""

import argparse
import json
import os
import tempfile
import time

import torch

from benchmarks.common import (
    NETWORKS,
    Child,
    EngineLoop,
    config,
    interleave,
    median,
    network_data,
    parser,
    ratios,
    serve,
    table_row,
    write_section,
)
from cnn.workers import WORKER_ENV


def child(arg):
    """arg: `<network>:<precision>:<eager|compiled>`; ready line: JSON {first_round, steady} seconds for the
    first and second rounds of `steps`; each request `steps` -> images/s."""
    network, precision, kind = arg.split(":")
    torch.set_num_threads(1)
    images, labels, norm = network_data(network)
    engine = EngineLoop(config(network, precision), norm=norm, shape=NETWORKS[network].shape, form="plain")
    if kind == "compiled":
        engine.trainer.model = torch.compile(engine.trainer.model)
    steps = NETWORKS[network].steps
    times = []
    for _ in range(2):
        start = time.perf_counter()
        engine.round(images, labels, steps)
        times.append(time.perf_counter() - start)
    ready = json.dumps({"first_round": times[0], "steady": times[1]})
    serve(ready, lambda line: f"{engine.round(images, labels, int(line)):.3f}")


def measure(network, precision, rounds, steps):
    inductor = tempfile.mkdtemp(prefix="cnn-inductor-")
    env = {**WORKER_ENV, "TORCHINDUCTOR_CACHE_DIR": inductor}
    children = {}
    try:
        cold = Child("benchmarks.compile", f"{network}:{precision}:compiled", env)
        first = json.loads(cold.ready)
        cold.close()
        for kind in ("eager", "compiled"):  # the compiled one finds the cache the cold one left
            children[kind] = Child("benchmarks.compile", f"{network}:{precision}:{kind}", env)
        warm = json.loads(children["compiled"].ready)
        asks = {kind: (lambda c=c: float(c.ask(steps))) for kind, c in children.items()}
        results = interleave(asks, rounds, log=lambda line: print(f"{network} {precision} {line}", flush=True))
    finally:
        for c in children.values():
            c.close()
    return first, warm, results


def lines_for(network, precision, first, warm, results, steps):
    batch = config(network, precision).batch_size
    eager, compiled = median(results["eager"]), median(results["compiled"])
    cold_s = first["first_round"] - first["steady"]
    warm_s = warm["first_round"] - warm["steady"]
    saved_per_image = 1 / eager - 1 / compiled
    pays = f"{cold_s / saved_per_image:,.0f} images" if saved_per_image > 0 else "never (no gain)"
    run = NETWORKS[network].run_images
    return [
        f"**{network}, {precision}** ({steps} batches of {batch} a round): compile {cold_s:.1f} s with an empty "
        f"cache, {warm_s:.1f} s with the cache a first run left; pays back after {pays} (a default run trains "
        f"{run:,}).",
        "",
        "| measure | median | per round |",
        "|---|---|---|",
        table_row("eager, images/s", results["eager"]),
        table_row("compiled, images/s", results["compiled"]),
        table_row("compiled / eager", ratios(results, "compiled", "eager"), "{:.2f}"),
        "",
    ]


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    p.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    args = p.parse_args()
    if args.child:
        return child(args.child)
    lines = [
        "Plain form, 1 thread, the workers' environment; inductor (torch.compile's default backend, gcc "
        f"{os.popen('gcc -dumpversion').read().strip() or 'not found'}).",
        "",
    ]
    for network in args.networks:
        for precision in args.precisions:
            steps = 3 if args.quick else NETWORKS[network].steps
            rounds = args.rounds or (2 if args.quick else 5)
            first, warm, results = measure(network, precision, rounds, steps)
            lines += lines_for(network, precision, first, warm, results, steps)
    write_section("compile", lines, args)


if __name__ == "__main__":
    main()
