"""Run manager: one worker process per run, stop, and the history late joiners need.

It uses plain subprocess and threading. Under eventlet's monkey-patching (the
server) these become green, so reading a worker's pipe never blocks the hub;
from the command line they are ordinary threads.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from .config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ENDED = ("finished", "stopped", "failed")
ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")  # ids never name a path
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
STOP_GRACE = 0.5  # seconds a worker gets to end by SIGTERM before SIGKILL
MAX_ACTIVE = 4  # queued or running at once: two pairs; each worker holds the data set and torch (~0.9 GB)


class UnknownRun(LookupError):
    """No run has that id."""


class Busy(RuntimeError):
    """Too many runs are queued or running; the message says what to do."""


class Run:
    def __init__(self, run_id, config, mode, group=None, slot=0):
        self.id, self.config, self.mode = run_id, config, mode
        self.group, self.slot = group or run_id, slot  # runs started together share a group; slot 0 is A
        self.status, self.error = "queued", None
        self.created = time.time()
        self.info = {}  # what the worker reported at run_started and run_finished
        self.metrics = {"batch": [], "epoch": [], "gradients": []}
        self.proc = None
        self.analysis = None  # None, "pending", "ready" or "failed"

    def summary(self, metrics=True):
        out = {
            "id": self.id,
            "config": self.config.to_dict(),
            "mode": self.mode,
            "group": self.group,
            "slot": self.slot,
            "status": self.status,
            "error": self.error,
            "created": self.created,
            "info": self.info,
            "analysis": self.analysis,
        }
        if metrics:
            out["metrics"] = self.metrics
        return out


class RunManager:
    def __init__(self, data_dir, runs_dir, device="auto", listener=None, cores=None, analyse=True):
        self.data_dir, self.runs_dir, self.device = str(data_dir), Path(runs_dir), device
        self.listener = listener or (lambda name, payload: None)
        self.cores = cores or os.cpu_count() or 1
        self.analyse = analyse  # the command line has no use for analyses
        self.runs = {}
        self.lock = threading.Lock()
        self.analysis_lock = threading.Lock()  # one analysis at a time, so their timings compare
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._load_saved()

    # ---- queries -------------------------------------------------------
    def get(self, run_id):
        run = self.runs.get(run_id) if isinstance(run_id, str) and ID_PATTERN.match(run_id) else None
        if run is None:
            raise UnknownRun(f"run_id: no run with id {run_id!r}; GET /api/runs lists the runs")
        return run

    def newest_first(self):
        return sorted(self.runs.values(), key=lambda r: r.created, reverse=True)

    def weights_path(self, run_id):
        return self.runs_dir / run_id / "weights.pt"

    def active(self):
        return [r for r in self.runs.values() if r.status in ("queued", "running")]

    # ---- actions -------------------------------------------------------
    def start(self, configs, mode="parallel"):
        if mode not in ("parallel", "sequential"):
            raise ConfigError("mode", "must be parallel or sequential")
        if len(self.active()) + len(configs) > MAX_ACTIVE:
            raise Busy(
                f"{len(self.active())} runs are queued or training and at most {MAX_ACTIVE} may be at once; "
                "stop some or wait for them to end."
            )
        runs, group = [], uuid.uuid4().hex[:12]
        for slot, cfg in enumerate(configs):
            run = Run(uuid.uuid4().hex[:12], cfg, mode, group, slot)
            run.created += slot * 1e-6  # keeps the given order when sorting by time
            (self.runs_dir / run.id).mkdir(parents=True)
            self.runs[run.id] = run
            runs.append(run)
        self.listener("runs_created", {"group": group, "runs": [r.summary(metrics=False) for r in runs]})
        if mode == "parallel":
            threads = max(1, self.cores // len(runs))  # one run alone takes every core, two take half each
            for run in runs:
                self._launch(run, threads)
        else:
            threading.Thread(target=self._one_after_another, args=(runs,), daemon=True).start()
        return runs

    def stop(self, run_id):
        """Ends the run's worker; returns once the process is gone. History is kept."""
        run = self.get(run_id)
        with self.lock:
            if run.status in ENDED:
                return run
            run.status = "stopped"  # from here on, lines still in the pipe are dropped
        if run.proc is not None:
            run.proc.terminate()
            try:
                run.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()
        self._save(run)
        self.listener("run_stopped", {"run_id": run.id})
        self._analyse_later(run)
        return run

    def stop_all(self):
        for run in self.active():
            self.stop(run.id)

    # ---- workers -------------------------------------------------------
    def _one_after_another(self, runs):
        for run in runs:
            reader = self._launch(run, self.cores)
            if reader:
                reader.join()

    def _launch(self, run, threads):
        spec = {
            "config": run.config.to_dict(),
            "data_dir": self.data_dir,
            "device": self.device,
            "threads": threads,
            "weights_path": str(self.weights_path(run.id)),
        }
        # under the lock: a stop that came first wins, and one that comes later finds run.proc set
        with self.lock:
            if run.status != "queued":
                return None
            try:
                run.proc = self._spawn("cnn.worker", spec, run.id, "worker.log", subprocess.PIPE)
            except OSError as exc:  # out of processes or file handles: say so rather than stay queued
                run.status, run.error = "failed", f"The training process could not start: {exc}"
        if run.status == "failed":
            self._save(run)
            self.listener("run_failed", {"run_id": run.id, "error": run.error})
            return None
        reader = threading.Thread(target=self._read, args=(run,), daemon=True)
        reader.start()
        return reader

    def _spawn(self, module, spec, run_id, log_name, stdout=None):
        """Starts `python -m module spec`; stdin stays open so the child can tell when we are gone."""
        with open(self.runs_dir / run_id / log_name, "wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", module, json.dumps(spec)],
                cwd=ROOT,
                env=WORKER_ENV,
                stdin=subprocess.PIPE,
                stdout=stdout or log,
                stderr=log,
            )

    def _read(self, run):
        for line in run.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not an event; the worker sends stray output to its log
            self._handle(run, message.pop("event", None), message)
        run.proc.wait()
        run.proc.stdout.close()
        run.proc.stdin.close()  # the worker is gone; our ends of its pipes go too
        with self.lock:
            if run.status in ENDED:
                return
            run.status = "failed"
            run.error = self._crash_reason(run)
        self._save(run)
        self.listener("run_failed", {"run_id": run.id, "error": run.error})

    def _crash_reason(self, run):
        code = run.proc.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = (self.runs_dir / run.id / "worker.log").read_text(errors="replace").strip().splitlines()
        return f"The training process {how}" + (f": {tail[-1]}" if tail else ".")

    def _handle(self, run, name, payload):
        payload = {"run_id": run.id, **payload}  # stored as sent, so history replays like live events
        with self.lock:
            if run.status in ENDED:
                return
            if name in run.metrics:
                run.metrics[name].append(payload)
            elif name == "run_started":
                run.status = "running"
                run.info.update(payload)
            elif name == "run_finished":
                run.status = "finished"
                run.info.update(payload)
            elif name == "run_failed":
                run.status, run.error = "failed", payload.get("error")
            else:
                return
        if name in ("run_started", "epoch") or run.status in ENDED:
            self._save(run)  # a server that dies mid-run keeps the history up to the last epoch
        self.listener(name, payload)
        if name == "run_finished":
            self._analyse_later(run)

    # ---- analysis ------------------------------------------------------
    def analysis_path(self, run_id):
        return self.runs_dir / run_id / "analysis.json"

    def _analyse_later(self, run):
        if not self.analyse or not self.weights_path(run.id).exists():
            return  # stopped before its first snapshot: nothing to analyse
        run.analysis = "pending"
        threading.Thread(target=self._analyse, args=(run,), daemon=True).start()

    def resume_analyses(self):
        """Analyses that a stopped server never finished are made again."""
        for run in self.runs.values():
            if run.status in ("finished", "stopped") and run.analysis is None:
                self._analyse_later(run)

    def _analyse(self, run):
        # Timings compare only when measured alike: one analysis at a time, with no run training.
        with self.analysis_lock:
            while any(r.status in ("queued", "running") for r in self.runs.values()):
                time.sleep(0.5)
            self._analyse_now(run)

    def _analyse_now(self, run):
        info = dict(run.info)
        if "train_seconds" not in info and run.metrics["batch"]:  # stopped: measured up to its last batch
            info["train_seconds"] = run.metrics["batch"][-1].get("train_seconds")
        if "peak_memory_bytes" not in info and run.metrics["epoch"]:
            info["peak_memory_bytes"] = run.metrics["epoch"][-1].get("peak_memory_bytes")
        spec = {
            "config": run.config.to_dict(),
            "data_dir": self.data_dir,
            "device": info.get("device", self.device),  # where it trained, in the arithmetic it trained in
            "precision": info.get("precision", "fp32"),
            "threads": self.cores,
            "weights_path": str(self.weights_path(run.id)),
            "out_path": str(self.analysis_path(run.id)),
            "info": info,
        }
        try:
            process = self._spawn("cnn.analysis", spec, run.id, "analysis.log")
        except OSError:
            code = None
        else:
            code = process.wait()
            process.stdin.close()
        run.analysis = "ready" if code == 0 else "failed"
        self._save(run)
        self.listener("analysis_ready" if code == 0 else "analysis_failed", {"run_id": run.id})

    # ---- persistence ---------------------------------------------------
    def _save(self, run):
        path = self.runs_dir / run.id / "run.json"
        tmp = path.with_name(f"run.json.{threading.get_ident()}")  # one per thread: saves may overlap
        with self.lock:
            text = json.dumps(run.summary())
        tmp.write_text(text)
        os.replace(tmp, path)

    def _load_saved(self):
        for path in self.runs_dir.glob("*/run.json"):
            try:
                run = self._restore(json.loads(path.read_text()))
            except (ValueError, KeyError, TypeError, AttributeError, ConfigError):
                continue  # a damaged record is skipped, not fatal
            if ID_PATTERN.match(run.id) and path.parent.name == run.id:
                self.runs[run.id] = run

    def _restore(self, saved):
        from .config import validate

        run = Run(saved["id"], validate(saved["config"]), saved["mode"], saved["group"], saved["slot"])
        run.status, run.error = saved["status"], saved.get("error")
        run.created, run.info, run.metrics = float(saved["created"]), dict(saved["info"]), dict(saved["metrics"])
        if run.status not in ENDED:  # the server stopped while it trained; its worker died with it
            run.status = "stopped"
            run.error = "The server stopped during this run; its history up to the last finished epoch is kept."
        run.analysis = "ready" if self.analysis_path(run.id).exists() else None
        return run
