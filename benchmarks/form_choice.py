"""The autotuner's choice against every candidate forced: the chosen form within 5% of the best.

For each network (model A on MNIST at batch 64; the CIFAR-10 lab network at batch 128 with crop and flip),
cnn/forms.py chooses a form afresh (an empty cache), as a run's first start would. Then every candidate it
could have chosen (form x precision x intra-op threads) trains in a process of its own, forced, in the
workers' environment, through the engine's own loop (common.EngineLoop); the parent alternates them round
by round. Target: the median rate of the chosen candidate >= 0.95x the median rate of the fastest one.
"""

import argparse
import json

import torch

from benchmarks.common import (
    NETWORKS,
    Child,
    EngineLoop,
    config,
    engine_choice,
    interleave,
    median,
    network_data,
    parser,
    serve,
    table_row,
    verdict,
    write_section,
)
from cnn import forms
from cnn.train import native_bf16
from cnn.workers import WORKER_ENV

TARGET = 0.95


def candidates(network, allotted):
    """-> ["<form>/<precision>/<threads>t"]: everything forms.choose weighs for this network."""
    shape = NETWORKS[network].shape
    options = forms.candidates(config(network), shape, torch.device("cpu"), native_bf16(torch.device("cpu")))
    counts = sorted({allotted, 1, allotted // 2} - {0})
    return [f"{forms.name(*o)}/{n}t" for o in options for n in counts]


def child(arg):
    """One forced candidate (arg: `<network>:<form>/<precision>/<n>t`); each request `steps` -> images/s.
    `<network>:choose`: the autotuner's choice, made in the workers' environment (idle threads sleep there,
    which decides how much a second thread costs), said as JSON in its ready line."""
    network, label = arg.split(":")
    if label == "choose":
        images, labels, norm = network_data(network)
        _, _, chosen = engine_choice(config(network), NETWORKS[network].shape, 10, images, labels, norm)
        serve(json.dumps(chosen), lambda line: "")
        return
    form, precision, threads = label.split("/")
    torch.set_num_threads(int(threads.removesuffix("t")))
    images, labels, norm = network_data(network)
    engine = EngineLoop(config(network, precision), norm=norm, shape=NETWORKS[network].shape, form=form)
    engine.round(images, labels, 3)  # warm-up: oneDNN primitives, allocator
    serve(label, lambda line: f"{engine.round(images, labels, int(line)):.3f}")


def measure(network, rounds, steps, labels):
    children = {}
    try:
        for label in labels:
            children[label] = Child("benchmarks.form_choice", f"{network}:{label}", WORKER_ENV)
        asks = {label: (lambda c=c: float(c.ask(steps))) for label, c in children.items()}
        return interleave(asks, rounds, log=lambda line: print(f"{network} {line}", flush=True))
    finally:
        for c in children.values():
            c.close()


def section(network, chosen, results, rounds, steps):
    label = f"{chosen['form']}/{chosen['precision']}/{chosen['threads']}t"
    best = max(results, key=lambda k: median(results[k]))
    ratio = median(results[label]) / median(results[best])
    timed = ", ".join(f"{k} {v:.0f}" for k, v in chosen["rates"].items())
    lines = [
        f"#### {NETWORKS[network].title}",
        "",
        f"{rounds} alternating rounds of {steps} batches of {config(network).batch_size}. The autotuner chose "
        f"**{label}** in {chosen['seconds']:.2f} s (its own timing, images/s: {timed}).",
        "",
        "| candidate, forced | median images/s | per round |",
        "|---|---|---|",
        *(table_row(f"**{k}** (chosen)" if k == label else k, v) for k, v in results.items()),
        "",
        f"Target: the chosen candidate >= {TARGET:.2f}x the fastest ({best}): **{verdict(ratio >= TARGET)}** "
        f"({ratio:.2f}x).",
        "",
    ]
    return lines


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    args = p.parse_args()
    if args.child:
        return child(args.child)
    allotted = torch.get_num_threads()  # a lone run's allotment: every core
    lines = [
        "Each candidate is a form (cnn/forms.py), a precision and a number of intra-op threads, trained forced "
        "in its own process; the choice is what a run's first start on this machine picks.",
        "",
    ]
    for network in args.networks:
        chooser = Child("benchmarks.form_choice", f"{network}:choose", WORKER_ENV)
        chosen = json.loads(chooser.ready)
        chooser.close()
        steps = 3 if args.quick else NETWORKS[network].steps
        rounds = args.rounds or (2 if args.quick else 7)
        results = measure(network, rounds, steps, candidates(network, allotted))
        lines += section(network, chosen, results, rounds, steps)
    write_section("form_choice", lines, args)


if __name__ == "__main__":
    main()
