"""One run's OS process: `python -m cnn.worker '<spec json>'`.

Events go out as JSON lines on the descriptor that was stdout; stray prints of
any library are sent to stderr so they cannot corrupt that stream. The worker
exits when its parent goes (stdin closes, or the parent-death signal on Linux), and a SIGTERM (a stop)
ends it cleanly: `finally` blocks run, so a weight snapshot cut short removes its temporary file.
"""

import json
import os
import signal
import sys
import threading
import traceback

from . import events


def die_with_parent():
    # A terminal's Ctrl-C reaches the whole process group; the parent decides when we end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch_stdin():  # the parent holds our stdin open; EOF means it is gone
        while os.read(0, 1):  # the raw descriptor: a buffered read would block interpreter shutdown
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()


def exit_on_sigterm():
    """SIGTERM raises SystemExit in the main thread, so cleanups run on the way out. A second one while
    they run is ignored (the run manager sends SIGKILL if we take too long)."""

    def leave(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)  # the code a shell reports for a process ended by that signal

    signal.signal(signal.SIGTERM, leave)


def main(argv):
    exit_on_sigterm()
    spec = json.loads(argv[1])
    stream = os.fdopen(os.dup(1), "w", buffering=1)  # line-buffered: one event per line, sent at once
    os.dup2(2, 1)
    die_with_parent()

    def emit(name, payload):
        stream.write(json.dumps({"event": name, **payload}) + "\n")

    import torch

    from .config import validate
    from .plugins import standard
    from .train import Trainer

    torch.set_num_threads(max(1, int(spec.get("threads", 1))))
    try:
        cfg = validate(spec["config"])
        plugins = standard(emit, spec.get("weights_path"))
        where = {"cache_dir": spec.get("cache_dir"), "autotune": spec.get("autotune", True)}
        Trainer(cfg, spec["data_dir"], spec.get("device", "auto"), plugins, **where).run()
    except Exception as exc:  # report every failure as a fact; the server decides what to show
        traceback.print_exc()  # the full story goes to the run's log, a sentence to the user
        emit(events.RUN_FAILED, {"error": str(exc) or type(exc).__name__})
        raise SystemExit(1) from None


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit as exc:  # a stop, or a failure already reported; `finally` blocks have run by now
        # Skip the interpreter's teardown: with torch loaded it takes about a second, longer than the run
        # manager waits before SIGKILL. The event stream is line-buffered, so every event has gone out.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
