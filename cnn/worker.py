"""One run's OS process: `python -m cnn.worker '<spec json>'` (a cold start), or a warm worker started ahead
of its run, `python -m cnn.worker --warm '<setting json>'`: it imports torch, opens the default dataset and
trains one step of each default model (so a first batch builds no kernel), says worker_ready, and then
reads its run's spec as one JSON line on stdin. Either way it trains that one run and exits.

Events go out as JSON lines on the descriptor that was stdout; stray prints of any library are sent to stderr
so they cannot corrupt that stream. The worker exits when its parent goes (stdin closes, or the parent-death
signal on Linux), and a SIGTERM (a stop) ends it cleanly: `finally` blocks run, so a weight snapshot cut short
removes its temporary file.
"""

import gc
import json
import os
import queue
import signal
import sys
import threading
import traceback

from . import events

READY = "worker_ready"  # a warm worker's one line before its run's events


def die_with_parent(spec_lines=None):
    """spec_lines: a queue that gets stdin's first line (a warm worker's spec); stdin is watched either way.
    Stray output goes to the spec's log from the moment it comes, though the warm-up may still run: should
    the worker die there, the run's log says why, as a cold worker's does."""
    # A terminal's Ctrl-C reaches the whole process group; the parent decides when we end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    PR_SET_PDEATHSIG = 1
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch_stdin():  # the parent holds our stdin open; EOF means it is gone
        wanted, pending = spec_lines, b""
        while chunk := os.read(0, 65536):  # the raw descriptor: a buffered read would block interpreter shutdown
            if wanted is not None:
                pending += chunk
                if b"\n" in pending:
                    line = pending.split(b"\n", 1)[0]
                    follow_run_log(line)
                    wanted.put(line)
                    wanted = None
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()


def follow_run_log(spec_line):
    try:
        log_to(json.loads(spec_line)["log_path"])
    except Exception:  # the output stays in the warm workers' log; the run goes on
        traceback.print_exc()


def exit_on_sigterm():
    """SIGTERM raises SystemExit in the main thread, so cleanups run on the way out. A second one while
    they run is ignored (the run manager sends SIGKILL if we take too long)."""

    def leave(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)  # the code a shell reports for a process ended by that signal

    signal.signal(signal.SIGTERM, leave)


def warm_up(setting):
    """Opens the setting's dataset (only one already on disk: a server's start downloads nothing) and trains
    one step of each default model in each precision a run may pick. -> the datasets.Loaded, or None."""
    import torch

    from . import data, datasets
    from .config import defaults_for, validate
    from .train import Trainer, native_bf16, pick_device

    name, data_dir, cache_dir = setting["dataset"], setting["data_dir"], setting["cache_dir"]
    if name not in data.SOURCES or not data.on_disk(data_dir, data.SOURCES[name][1]):
        return None
    torch.set_num_threads(1)  # the run sets its own count; meanwhile a running run keeps the cores
    try:
        loaded = datasets.open_dataset(name, data_dir, cache_dir)
        device = pick_device(setting.get("device", "auto"))
        precisions = ("fp32", "bf16") if native_bf16(device) else ("fp32",)
        for slot in (0, 1):
            for precision in precisions:
                cfg = validate({"dataset": name, "precision": precision}, defaults_for(slot))
                cfg = cfg.model_copy(update={"train_samples": cfg.batch_size, "validation": 0.0})
                trainer = Trainer(cfg, data_dir, device, cache_dir=cache_dir, autotune=False, dataset=loaded)
                trainer.setup()
                trainer.train_epoch(1)  # one batch: the kernels of its shapes are built and kept
    except Exception:  # a warm worker without its data is still warm: the run opens its own
        traceback.print_exc()
        return None
    return loaded


def log_to(path):
    """From now on stray output goes to the run's log (the run manager made it empty)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def prctl(option, arg):
    """Linux's prctl (a process's parent-death signal, its name); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(option, arg)


def mute(fd):
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def main(argv):
    exit_on_sigterm()
    warm = argv[1] == "--warm"
    stream = os.fdopen(os.dup(1), "w", buffering=1)  # line-buffered: one event per line, sent at once
    os.dup2(2, 1)
    # a data-parallel rank forked from this worker (cnn/parallel.py) must not hold the events pipe open (the
    # server reads it to its end) nor write to it: its descriptor there points to /dev/null instead
    os.register_at_fork(after_in_child=lambda: mute(stream.fileno()))
    spec_lines = queue.SimpleQueue() if warm else None
    die_with_parent(spec_lines)

    def emit(name, payload):
        stream.write(json.dumps({"event": name, **payload}) + "\n")

    import torch

    from .config import validate
    from .plugins import standard
    from .train import Trainer

    preloaded, setting = None, json.loads(argv[2]) if warm else {}
    if warm:
        preloaded = warm_up(setting)
        gc.collect()
        gc.freeze()  # torch's many objects leave the collector's view: a run's gc.collect() takes ms, not 0.2 s
        emit(READY, {"pid": os.getpid(), "dataset": preloaded.name if preloaded else None})
        spec = json.loads(spec_lines.get())  # a stop (SIGTERM) while we wait interrupts the wait
    else:
        spec = json.loads(argv[1])
    torch.set_num_threads(max(1, int(spec.get("threads", 1))))  # known only now, for a warm worker
    try:
        cfg = validate(spec["config"])
        plugins = standard(emit, spec.get("weights_path"))
        where = {"cache_dir": spec.get("cache_dir"), "autotune": spec.get("autotune", True)}
        where["data_parallel"] = spec.get("data_parallel", False)
        opened = preloaded if preloaded and fits(preloaded, cfg, spec, setting) else None
        Trainer(cfg, spec["data_dir"], spec.get("device", "auto"), plugins, **where, dataset=opened).run()
    except Exception as exc:  # report every failure as a fact; the server decides what to show
        traceback.print_exc()  # the full story goes to the run's log, a sentence to the user
        emit(events.RUN_FAILED, {"error": str(exc) or type(exc).__name__})
        raise SystemExit(1) from None


def fits(loaded, cfg, spec, setting):
    """The run asks for the very dataset the warm worker opened: same name, data and cache folders."""
    same_place = spec["data_dir"] == setting["data_dir"] and spec.get("cache_dir") == setting["cache_dir"]
    return same_place and cfg.dataset == loaded.name and cfg.image_size is None


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit as exc:  # a stop, or a failure already reported; `finally` blocks have run by now
        # Skip the interpreter's teardown: with torch loaded it takes about a second, longer than the run
        # manager waits before SIGKILL. The event stream is line-buffered, so every event has gone out.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
