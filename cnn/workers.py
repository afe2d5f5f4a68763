"""Worker processes: their environment, how they start (cold, or warm ahead of their run), how their event pipe
is read, how they end and why.

It uses plain subprocess and threading. Under eventlet's monkey-patching (the server) they are green, so
reading a worker's pipe never blocks the hub; from the command line they are ordinary.
"""

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from .worker import READY

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE = 0.5  # seconds a worker gets to end by SIGTERM before SIGKILL
LEFTOVERS = "weights.pt.tmp*"  # a snapshot cut short by SIGKILL; a SIGTERM'd worker removes its own
# glibc keeps freed memory (up to 256 MB above the heap's top, every block under 32 MB on the heap) instead
# of handing it back to the system after each step and faulting it in again, page by page, at the next:
# model A's step ran 1.2x faster at batch 64 and 1.5x at batch 1024 (benchmarks/allocator.py).
# Other C libraries ignore the variable. A user's own malloc settings (either form) win.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.top_pad=268435456"
LOG_LIMIT = 4 * 1024 * 1024  # bytes: a longer warm workers' log is moved to <name>.1 before the next start


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


def spawn(module, spec, log_path, piped=False, args=(), append=False):
    """Starts `python -m module [args] spec`, its output to log_path, or its stdout to a pipe when `piped` (the
    worker's events); stdin stays open so the child can tell when we are gone."""
    with open(log_path, "ab" if append else "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args, json.dumps(spec)],
            cwd=ROOT,
            env=WORKER_ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if piped else log,
            stderr=log,
        )


def hand(proc, spec):
    """Sends a warm worker its run's spec as one JSON line on stdin (which it goes on watching: EOF there
    still means we are gone). -> False when the worker has died."""
    try:
        proc.stdin.write(json.dumps(spec).encode() + b"\n")
        proc.stdin.flush()
    except OSError:  # BrokenPipeError: it ended while it waited
        return False
    return True


class Warm:
    """One warm worker: its process, its reader thread, and the run it was given (None while it waits)."""

    def __init__(self, proc):
        self.proc, self.run, self.ready, self.dead, self.reader = proc, None, False, False, None


class WarmPool:
    """`size` worker processes started ahead of their runs (`python -m cnn.worker --warm setting`), so a run
    that takes one skips importing torch and opening its data. Each has one reader thread for its whole life:
    before its run the worker only says worker_ready; then its events go to handle(run, name, payload) and its
    end to ended(run) (the run manager's). A replacement starts once the taken one's run has started training:
    not while it is being set up, when its forms may be timed (cnn/forms.py) and a replacement importing torch
    beside it would skew the timing that every later run of the shape inherits. One that dies while
    it waits is replaced after a pause that doubles each time (1 s up to a minute), so a worker that cannot
    start does not respawn in a loop; a worker taken by a run resets the pause. A start that fails for any
    reason (out of processes, a setting that cannot be sent) is logged and held back the same way.

    One thread starts them all and lives as long as the process: Linux sends the parent-death signal when the
    *thread* that started a child ends, so a short-lived thread (a reader, a timer) must not start one."""

    MAX_PAUSE = 60.0

    def __init__(self, size, setting, log_path, handle, ended):
        self.size, self.setting, self.log_path = size, setting, Path(log_path)
        self.handle, self.ended = handle, ended
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # the starter's: a worker was taken or died, or we close
        self.waiting = []  # Warm workers without a run, oldest first
        self.setting_up = set()  # taken workers whose run has not started training yet: no start meanwhile
        self.pause, self.not_before = 0.0, 0.0  # the hold on starts after deaths
        self.closed = False
        threading.Thread(target=self._starter, daemon=True).start()

    def status(self):
        """-> {"size", "ready": [pid], "starting": [pid]}: the workers waiting for a run."""
        with self.lock:
            alive = [w for w in self.waiting if not w.dead]
        ready = [w.proc.pid for w in alive if w.ready]
        return {"size": self.size, "ready": ready, "starting": [w.proc.pid for w in alive if not w.ready]}

    def take(self, run, spec, log_path):
        """-> a Warm now training `run` (spec sent, log_path made empty for it), or None when none is alive."""
        taken = None
        with self.lock:  # the reader decides at the worker's end, under this lock, whose end it was
            for worker in sorted(self.waiting, key=lambda w: not w.ready):  # the ready first
                self.waiting.remove(worker)
                if worker.dead:
                    continue
                Path(log_path).write_bytes(b"")  # there already if the worker dies before it opens it
                worker.run = run
                if hand(worker.proc, spec):  # one lived to be taken: starts are held back no more
                    taken, self.pause, self.not_before = worker, 0.0, 0.0
                    self.setting_up.add(worker)
                    break
                worker.run = None  # it died: its reader counts it as a death
            self.wake.notify()
        return taken

    def close(self):
        """Ends every waiting worker (SIGTERM, then SIGKILL) and starts no more; returns once they are gone."""
        with self.lock:
            self.closed = True
            waiting, self.waiting = self.waiting, []
        for worker in waiting:
            end(worker.proc)

    def _starter(self):
        """Keeps `size` workers waiting, holding back after a death; never returns (see the class)."""
        with self.lock:
            while True:
                wait = self.not_before - time.monotonic()
                if self.closed or len(self.waiting) >= self.size or self.setting_up:
                    self.wake.wait()
                elif wait > 0:
                    self.wake.wait(wait)
                else:
                    try:
                        self._start()
                    except Exception:  # this thread must live on, or no worker is ever started again
                        logging.getLogger(__name__).exception("starting a warm worker")
                        self._hold_back()

    def _start(self):
        """Under the lock: one more waiting worker. Raises when none could start."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        rotate(self.log_path)
        proc = spawn("cnn.worker", self.setting, self.log_path, piped=True, args=("--warm",), append=True)
        worker = Warm(proc)
        worker.reader = threading.Thread(target=self._read, args=(worker,), daemon=True)
        try:
            worker.reader.start()
        except BaseException:  # no thread to read it (RuntimeError: out of threads): it would wait unread
            end(proc)
            reap(proc)
            raise
        self.waiting.append(worker)

    def _settled(self, worker):
        """A taken worker's run trains now (or ended): the replacement may start."""
        with self.lock:
            if worker in self.setting_up:
                self.setting_up.discard(worker)
                self.wake.notify()

    def _hold_back(self):
        self.pause = min(max(2 * self.pause, 1.0), self.MAX_PAUSE)
        self.not_before = time.monotonic() + self.pause

    def _read(self, worker):
        for name, payload in read_events(worker.proc):
            if worker.run is not None:
                if name in ("run_started", "run_failed"):
                    self._settled(worker)
                self.handle(worker.run, name, payload)
            elif name == READY:
                worker.ready = True
        self._settled(worker)
        with self.lock:
            run, worker.dead = worker.run, True
            if worker in self.waiting:
                self.waiting.remove(worker)
            if run is None and not self.closed:
                self._hold_back()
                self.wake.notify()
        if run is not None:
            self.ended(run)  # the run manager reaps it and says how the run ended
        else:
            reap(worker.proc)


def rotate(path, limit=LOG_LIMIT):
    """A log past `limit` bytes is moved to <name>.1 (replacing the one before), so the log of workers that
    start all day stays bounded; a live worker that still writes to it writes on in <name>.1."""
    try:
        if path.stat().st_size > limit:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


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
