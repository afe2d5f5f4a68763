"""Target 3: streaming batch events to a listener costs <= 3% of training throughput.

Three copies of the engine's loop (Trainer.train_epoch, model A) in alternating rounds:
- silent: emit is a no-op (no listener), default throttle (<= 20 batch events/s);
- streamed: emit writes each event as a JSON line to a pipe that another process reads
  and parses (as the worker does for the server), default throttle;
- every_batch: the same pipe, with the throttle off, so every single batch is an event.
"""

import json
import subprocess
import sys

from benchmarks.common import DATA_DIR, EngineLoop, interleave, median, parser, ratios, verdict, write_section
from cnn import data
from cnn.config import RunConfig

TARGET = 0.03
READER = "import json, sys\nfor line in sys.stdin:\n    json.loads(line)\n"  # a listener that parses each event


def piped_emit(pipe, counter):
    def emit(name, payload):
        pipe.write(json.dumps({"event": name, "run_id": "bench", **payload}) + "\n")
        counter[name] = counter.get(name, 0) + 1

    return emit


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = args.rounds or (2 if args.quick else 9)
    steps = 8 if args.quick else 40
    cfg = RunConfig()
    images, labels = data.load("mnist", DATA_DIR, train=True)
    reader = subprocess.Popen([sys.executable, "-c", READER], stdin=subprocess.PIPE, text=True, bufsize=1)
    counts_streamed, counts_every = {}, {}
    loops = {
        "silent": EngineLoop(cfg),
        "streamed": EngineLoop(cfg, emit=piped_emit(reader.stdin, counts_streamed)),
        "every_batch": EngineLoop(cfg, emit=piped_emit(reader.stdin, counts_every), batch_hz=1e9),
    }
    try:
        for loop in loops.values():
            loop.round(images, labels, 5)  # warm-up
        results = interleave(
            {name: (lambda lp=loop: lp.round(images, labels, steps)) for name, loop in loops.items()}, rounds
        )
    finally:
        reader.stdin.close()
        reader.wait()
    cost = {name: 1 - median(ratios(results, name, "silent")) for name in ("streamed", "every_batch")}
    lines = [
        f"Model A, engine loop, {rounds} alternating rounds of {steps} batches; the listener is a separate Python "
        "process that json-parses every line from the pipe.",
        "",
        "| loop | median images/s | per-round ratio to silent | cost (1 - median ratio) | batch events sent |",
        "|---|---|---|---|---|",
        f"| silent (no-op emit) | {median(results['silent']):.0f} | 1 | 0 | 0 |",
        *(
            f"| {name} | {median(results[name]):.0f} | "
            + ", ".join(f"{v:.3f}" for v in ratios(results, name, "silent"))
            + f" | **{cost[name]:+.1%}** | {counts.get('batch', 0)} |"
            for name, counts in (("streamed", counts_streamed), ("every_batch", counts_every))
        ),
        "",
        f"Target: streaming costs <= {TARGET:.0%}: default throttle **{verdict(cost['streamed'] <= TARGET)}** "
        f"({cost['streamed']:+.1%}); every batch an event **{verdict(cost['every_batch'] <= TARGET)}** "
        f"({cost['every_batch']:+.1%}). A negative cost is noise.",
        "",
    ]
    write_section("streaming", lines, args)


if __name__ == "__main__":
    main()
