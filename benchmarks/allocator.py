"""Diagnostic: what the workers' malloc tunables do to the engine's step (page faults, time, memory).

For each batch size, two processes run the engine's own loop (Trainer.train_epoch, model A):
one with glibc's default allocator behaviour, one with workers.MALLOC_TUNABLES, as the server
starts its workers. The parent alternates rounds between them; each round reports the
process's minor page faults and milliseconds per step, and its peak resident memory.
"""

import argparse
import resource
import time

from benchmarks.common import (
    DATA_DIR,
    Child,
    EngineLoop,
    interleave,
    median,
    parser,
    plain_env,
    ratios,
    serve,
    write_section,
)
from cnn import data
from cnn.config import RunConfig
from cnn.workers import MALLOC_TUNABLES


def child(batch):
    images, labels = data.load("mnist", DATA_DIR, train=True)
    loop = EngineLoop(RunConfig(batch_size=int(batch)))
    loop.round(images, labels, 3)  # warm-up

    def answer(line):
        steps = int(line)
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        loop.round(images, labels, steps)
        seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
        return f"{seconds / steps * 1e3:.2f} {(after.ru_minflt - before.ru_minflt) / steps:.0f} {after.ru_maxrss}"

    serve(batch, answer)


def measure(batch, steps, envs, rounds):
    """-> table rows for one batch size: each allocator's time, faults and memory, and the time ratio."""
    children, replies = [], {name: [] for name in envs}
    try:
        for env in envs.values():
            children.append(Child("benchmarks.allocator", batch, env))

        def ask(name, proc):
            replies[name].append([float(v) for v in proc.ask(steps).split()])
            return replies[name][-1][0]

        ms = interleave({n: (lambda n=n, c=c: ask(n, c)) for n, c in zip(envs, children, strict=True)}, rounds)
    finally:
        for c in children:
            c.close()
    rows = []
    for name in envs:
        faults, rss_mb = median([r[1] for r in replies[name]]), replies[name][-1][2] / 1024
        rows.append(f"| {batch} | {name} | {median(ms[name]):.1f} | {faults:.0f} | {rss_mb:.0f} |")
    rows.append(f"| {batch} | **default / tuned time** | **{median(ratios(ms, 'default', 'tuned')):.2f}x** | | |")
    return rows


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child)
    rounds = args.rounds or (2 if args.quick else 5)
    envs = {"default": plain_env(), "tuned": plain_env() | {"GLIBC_TUNABLES": MALLOC_TUNABLES}}
    rows = []
    for batch, steps in ((64, 40), (1024, 4)):
        rows += measure(batch, 2 if args.quick else steps, envs, rounds)
    lines = [
        f"Model A, engine loop, {rounds} alternating rounds per batch size; tuned = "
        f"`GLIBC_TUNABLES={MALLOC_TUNABLES}` (the workers' setting), default = glibc's own. Both with "
        "OMP_WAIT_POLICY=PASSIVE and all cores.",
        "",
        "| batch | allocator | ms per step (median) | minor page faults per step | peak resident MB |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    write_section("allocator", lines, args)


if __name__ == "__main__":
    main()
