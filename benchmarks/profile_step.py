"""Where model A's training step spends its time in the engine's loop (torch.profiler, CPU).

Prints the top ops by self CPU time over a number of Trainer.train_epoch batches, grouped
into forward / backward / optimizer / data so a suggested change can be sized. Not a ratio
benchmark: use it to find what to try, then prove the change with a ratio.
"""

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import DATA_DIR, EngineLoop, parser
from cnn import data
from cnn.config import RunConfig


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    steps = 10 if args.quick else 60
    images, labels = data.load("mnist", DATA_DIR, train=True)
    loop = EngineLoop(RunConfig())
    loop.round(images, labels, 5)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        loop.round(images, labels, steps)
    events = prof.key_averages(group_by_input_shape=True)  # tells conv1 from conv2 and conv3
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{steps} batches, {torch.get_num_threads()} threads, self CPU total {total / 1e3 / steps:.1f} ms/batch")
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:20]:
        share = e.self_cpu_time_total / total
        per_batch = e.self_cpu_time_total / 1e3 / steps
        print(f"{share:6.1%}  {per_batch:7.2f} ms/batch  {e.count // steps:3d}x  {e.key}  {str(e.input_shapes)[:80]}")


if __name__ == "__main__":
    main()
