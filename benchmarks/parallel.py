"""Two runs in parallel (real worker processes via RunManager) vs one run alone, as the engine chooses and
with each form forced: one process, or data-parallel (cnn/parallel.py: a process of one thread per core).

Solo: RunManager starts one model A run (all cores), data_parallel "auto" as the server's default (the split
is timed at the first solo round and kept, as for a user's second run). Solo one process and solo
data-parallel force "off" and "on". Parallel: it starts two model A runs at once (half the cores each, as
the server does). Throughput counts training only, from batch events
(samples_seen at each event's arrival time), never start-up: solo = samples between its
first and last batch event / time between them; parallel = both runs' samples inside
the window where both are training / that window.
Targets: parallel together >= 90% of one run alone (the server's split of the cores), and
(issue 15) one run alone >= 80% of the parallel runs' summed rate.
"""

import tempfile
import threading
import time

from benchmarks.common import DATA_DIR, interleave, median, parser, ratios, table_row, verdict, write_section
from cnn.config import RunConfig
from cnn.runs import RunManager

TARGET = 0.90
ALONE_TARGET = 0.80  # one run alone against one-thread runs, one per core, trained together
CHOICES = []  # (data_parallel setting, processes the solo run trained in, its split facts), a row per solo round


class Recorder:
    """RunManager listener: (arrival time, samples_seen) of each run's batch events."""

    def __init__(self):
        self.points, self.ended = {}, {}
        self.lock = threading.Lock()

    def __call__(self, name, payload):
        with self.lock:
            if name == "batch":
                self.points.setdefault(payload["run_id"], []).append((time.perf_counter(), payload["samples_seen"]))
            elif name in ("run_finished", "run_failed", "run_stopped"):
                self.ended[payload["run_id"]] = name
                if name == "run_failed":
                    print("run failed:", payload.get("error"))


def samples_at(points, t):
    """samples_seen at time t, interpolated between batch events."""
    for (t0, s0), (t1, s1) in zip(points, points[1:], strict=False):
        if t0 <= t <= t1:
            return s0 + (s1 - s0) * (t - t0) / max(t1 - t0, 1e-9)
    return points[-1][1] if t > points[-1][0] else points[0][1]


def one_round(count, train_samples, epochs, runs_dir, data_parallel="auto"):
    recorder = Recorder()
    # no analyses: each would start after its run and steal the cores from the next round
    manager = RunManager(
        DATA_DIR, runs_dir, device="cpu", listener=recorder, analyse=False, data_parallel=data_parallel
    )
    runs = manager.start([RunConfig(train_samples=train_samples, epochs=epochs) for _ in range(count)], "parallel")
    while len(recorder.ended) < count:
        time.sleep(0.05)
    if any(v != "run_finished" for v in recorder.ended.values()):
        raise RuntimeError(f"a run did not finish: {recorder.ended}")
    if count == 1:
        form = manager.runs[runs[0].id].info["fast_form"]
        CHOICES.append((data_parallel, form.get("data_parallel", 1), form.get("split")))
    series = [recorder.points[r.id] for r in runs]
    start, end = max(p[0][0] for p in series), min(p[-1][0] for p in series)
    if end - start < 1.0:  # the runs hardly overlapped (a slow start): count the union instead, conservatively
        start, end = min(p[0][0] for p in series), max(p[-1][0] for p in series)
        print("warning: runs overlapped < 1 s; using the union window")
    done = sum(samples_at(p, end) - samples_at(p, start) for p in series)
    return done / (end - start)


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    rounds = args.rounds or (2 if args.quick else 4)
    # long enough that splitting pays for starting its processes (cnn/split.py): a short run is never split
    samples, epochs = (3000, 1) if args.quick else (30000, 3)
    with tempfile.TemporaryDirectory() as runs_dir:
        results = interleave(
            {
                "parallel": lambda: one_round(2, samples, epochs, runs_dir),
                "solo": lambda: one_round(1, samples, epochs, runs_dir),
                "solo_one": lambda: one_round(1, samples, epochs, runs_dir, data_parallel="off"),
                "solo_dp": lambda: one_round(1, samples, epochs, runs_dir, data_parallel="on"),
            },
            rounds,
        )
    share = median(ratios(results, "parallel", "solo_one"))
    alone = {kind: median(ratios(results, kind, "parallel")) for kind in ("solo", "solo_one", "solo_dp")}
    auto = [(procs, facts) for setting, procs, facts in CHOICES if setting == "auto"]
    said = "; ".join(
        f"{procs} process{'es' if procs > 1 else ''}"
        + (
            f" (split {facts['rates']['split']:.0f} vs one {facts['rates']['one']:.0f} images/s, start "
            f"{facts['start_seconds']:.1f} s, {'timed' if facts['measured'] else 'kept'})"
            if facts and "rates" in facts
            else f" ({facts['why']})"
            if facts
            else ""
        )
        for procs, facts in auto
    )
    lines = [
        f"Model A, {epochs} epoch(s) of {samples} images per run, {rounds} alternating rounds; RunManager gives the "
        "solo run all cores and each parallel run half (torch threads = cores // runs). Worker start-up, the split's "
        "timing and evaluation are excluded (throughput from batch-event arrival times, over the window where every "
        "run in the round trains).",
        "",
        f"The engine's choice for the solo run, round by round: {said}.",
        "",
        "| measure | median | per round |",
        "|---|---|---|",
        table_row("one run alone, as the engine chooses (`--data-parallel auto`), images/s", results["solo"]),
        table_row("one run alone, one process (`off`), images/s", results["solo_one"]),
        table_row("one run alone, data-parallel, a process per core (`on`), images/s", results["solo_dp"]),
        table_row("two runs in parallel together, images/s", results["parallel"]),
        table_row(
            "**parallel / solo in one process** (median of per-round ratios)",
            ratios(results, "parallel", "solo_one"),
            "{:.2f}",
            f"**{share:.2f}**",
        ),
        table_row("**solo as chosen / parallel**", ratios(results, "solo", "parallel"), "{:.2f}"),
        table_row("solo in one process / parallel", ratios(results, "solo_one", "parallel"), "{:.2f}"),
        table_row("solo data-parallel / parallel", ratios(results, "solo_dp", "parallel"), "{:.2f}"),
        "",
        f"Target: parallel together >= {TARGET:.0%} of one run alone in one process: **{verdict(share >= TARGET)}** "
        f"({share:.0%}).",
        f"Target (issue 15): one run alone >= {ALONE_TARGET:.0%} of the parallel runs together: as the engine "
        f"chooses **{verdict(alone['solo'] >= ALONE_TARGET)}** ({alone['solo']:.0%}); one process "
        f"{alone['solo_one']:.0%}; data-parallel forced {alone['solo_dp']:.0%}.",
        "",
    ]
    write_section("parallel", lines, args)


if __name__ == "__main__":
    main()
