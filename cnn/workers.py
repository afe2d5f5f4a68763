"""Worker processes: their environment, how they start, how their event pipe is read, how they end and why.

It uses plain subprocess. Under eventlet's monkey-patching (the server) it is green, so reading a
worker's pipe never blocks the hub; from the command line it is ordinary.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE = 0.5  # seconds a worker gets to end by SIGTERM before SIGKILL
LEFTOVERS = "weights.pt.tmp*"  # a snapshot cut short by SIGKILL; a SIGTERM'd worker removes its own
# glibc keeps freed memory (up to 256 MB above the heap's top, every block under 32 MB on the heap) instead
# of handing it back to the system after each step and faulting it in again, page by page, at the next:
# model A's step ran 1.2x faster at batch 64 and 1.5x at batch 1024 (benchmarks/allocator.py).
# Other C libraries ignore the variable. A user's own malloc settings (either form) win.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.top_pad=268435456"


def worker_env(environ=os.environ):
    env = {
        # Idle OpenMP threads sleep instead of spinning: beside a browser, a server or a second run, spinning
        # threads fight for the cores and a run slowed to a tenth of its speed (benchmarks/omp_policy.py).
        "OMP_WAIT_POLICY": "PASSIVE",
        **environ,
    }
    theirs = environ.get("GLIBC_TUNABLES", "")
    tuned = "glibc.malloc." in theirs or any(k.startswith("MALLOC_") and k.endswith("_") for k in environ)
    if not tuned:
        env["GLIBC_TUNABLES"] = f"{theirs}:{MALLOC_TUNABLES}" if theirs else MALLOC_TUNABLES
    return env


WORKER_ENV = worker_env()


def spawn(module, spec, log_path, piped=False):
    """Starts `python -m module spec`, its output to log_path, or its stdout to a pipe when `piped` (the
    worker's events); stdin stays open so the child can tell when we are gone."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, json.dumps(spec)],
            cwd=ROOT,
            env=WORKER_ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if piped else log,
            stderr=log,
        )


def read_events(proc):
    """-> (name, payload) for each JSON line on the worker's pipe, up to its end (what it wrote before it
    died included)."""
    for line in proc.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue  # not an event (or one cut short); the worker sends stray output to its log
        yield message.pop("event", None), message


def reap(proc):
    """Waits for the process; our ends of its pipes go with it. -> its exit code."""
    code = proc.wait()
    for pipe in (proc.stdout, proc.stdin):
        if pipe is not None:
            pipe.close()
    return code


def end(proc, grace=STOP_GRACE):
    """SIGTERM (the worker exits cleanly), then SIGKILL after `grace` seconds; returns once it is gone."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def crash_reason(proc, log_path):
    code = proc.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    tail = Path(log_path).read_text(errors="replace").strip().splitlines()
    return f"The training process {how}" + (f": {tail[-1]}" if tail else ".")


def remove_leftovers(folder):
    """Temporary snapshot files (weights.pt.tmp<pid>) whose writer has ended: nobody will finish them. One
    whose process lives is left alone: another server or CLI may train in the same runs folder."""
    for path in Path(folder).glob(LEFTOVERS):
        pid = path.name.removeprefix(LEFTOVERS[:-1])
        if not (pid.isdigit() and alive(int(pid))):
            path.unlink(missing_ok=True)


def alive(pid):
    try:
        os.kill(pid, 0)  # no signal: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and is someone else's
        pass
    return True
