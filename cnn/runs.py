"""Run manager: starts, follows and stops each run's worker process, keeps every run's history for late
joiners, and hands ended runs to the analysis queue. The rooms it coordinates: records.py (the runs on
disk), workers.py (the processes, and the warm ones kept ready for the next run), analysis_queue.py (one
analysis at a time, none while a run trains).

Under eventlet's monkey-patching (the server) its threads and locks are green; from the command line they
are ordinary threads.
"""

import os
import threading
import uuid
from pathlib import Path

from . import events, split, workers
from .analysis_queue import AnalysisQueue
from .config import ConfigError, validate
from .events import ENDED
from .records import ID_PATTERN, Records, Run

MAX_ACTIVE = 4  # queued or running at once: two pairs; each worker holds the data set and torch (~0.9 GB)
MAX_REPEATS = 10
WARM_LOG = "warm-workers.log"  # in the runs folder: what warm workers say before they have a run


class UnknownRun(LookupError):
    """No run has that id."""


class Busy(RuntimeError):
    """Too many runs are queued or running; the message says what to do."""


class RunManager:
    def __init__(
        self,
        data_dir,
        runs_dir,
        device="auto",
        listener=None,
        cores=None,
        analyse=True,
        cache_dir=None,
        autotune=True,
        warm=0,
        data_parallel="auto",
    ):
        self.data_dir, self.runs_dir, self.device = str(data_dir), Path(runs_dir), device
        # decoded datasets: in the runs folder unless named, never in the data folder
        self.cache_dir = Path(cache_dir) if cache_dir else self.runs_dir / "cache"
        self.listener = listener or (lambda name, payload: None)
        self.cores = cores or os.cpu_count() or 1
        self.analyse = analyse  # the command line has no use for analyses
        self.autotune = autotune  # time the network's forms at a first run (cnn/forms.py), or take the plain one
        # a lone run on a CPU: "auto" splits over a process per core where that times faster (cnn/split.py),
        # "on" always, "off" never (True and False mean on and off)
        self.data_parallel = split.setting(data_parallel)
        self.lock = threading.Lock()  # guards the runs' status, metrics and processes
        self.records = Records(self.runs_dir, self.lock)
        self.analyses = AnalysisQueue(busy=lambda: bool(self.active()), work=self._analyse_now)
        self.runs = self.records.load()
        for run_id in self.runs:  # their workers died with an earlier server, perhaps mid-snapshot
            workers.remove_leftovers(self.records.folder(run_id))
        self.pool = None  # `warm` workers with torch imported and the default dataset open, for the next runs
        if warm:
            setting = {"dataset": validate({}).dataset, "data_dir": self.data_dir, "cache_dir": str(self.cache_dir)}
            setting["device"] = device
            log = self.runs_dir / WARM_LOG
            self.pool = workers.WarmPool(warm, setting, log, handle=self._handle, ended=self._reaped)

    # ---- queries -------------------------------------------------------
    def get(self, run_id):
        run = self.runs.get(run_id) if isinstance(run_id, str) and ID_PATTERN.match(run_id) else None
        if run is None:
            raise UnknownRun(f"run_id: no run with id {run_id!r}; GET /api/runs lists the runs")
        return run

    def newest_first(self):
        return sorted(self.runs.values(), key=lambda r: r.created, reverse=True)

    def weights_path(self, run_id):
        return self.records.weights_path(run_id)

    def analysis_path(self, run_id):
        return self.records.analysis_path(run_id)

    def active(self):
        return [r for r in list(self.runs.values()) if r.status in events.ACTIVE]  # list(): one atomic copy

    def warm_status(self):
        """-> {"size", "ready": [pid], "starting": [pid]}: the warm workers waiting for a run."""
        return self.pool.status() if self.pool else {"size": 0, "ready": [], "starting": []}

    # ---- actions -------------------------------------------------------
    def start(self, configs, mode="parallel", repeats=1):
        """One run per config, or with repeats n, n runs per config with seeds s, s+1, ..., s+n-1 (s is the
        config's seed), trained round by round: round r trains each config's r-th seed, together in
        parallel mode. A group counts against MAX_ACTIVE with the runs it trains at once."""
        if mode not in ("parallel", "sequential"):
            raise ConfigError("mode", "must be parallel or sequential")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
            raise ConfigError("repeats", f"must be a whole number from 1 to {MAX_REPEATS}")
        wanted = len(configs)
        if self.training_soon() + wanted > MAX_ACTIVE:
            raise Busy(
                f"{self.training_soon()} runs are queued or training and at most {MAX_ACTIVE} may be at once; "
                "stop some or wait for them to end."
            )
        runs, group = [], uuid.uuid4().hex[:12]
        for r in range(repeats):
            for slot, cfg in enumerate(configs):
                seeded = cfg.model_copy(update={"seed": cfg.seed + r}) if r else cfg
                run = Run(uuid.uuid4().hex[:12], seeded, mode, group, slot, repeat=r, repeats=repeats)
                run.created += len(runs) * 1e-6  # keeps the given order when sorting by time
                self.records.create(run)
                self.runs[run.id] = run
                runs.append(run)
        self.listener(events.RUNS_CREATED, {"group": group, "runs": [r.summary(metrics=False) for r in runs]})
        rounds = [runs[i : i + wanted] for i in range(0, len(runs), wanted)]
        if mode == "parallel" and repeats == 1:
            threads = max(1, self.cores // len(runs))  # one run alone takes every core, two take half each
            for run in runs:
                self._launch(run, threads)
        else:
            threading.Thread(target=self._round_by_round, args=(rounds, mode), daemon=True).start()
        return runs

    def training_soon(self):
        """Runs training at once or about to: a group with repeats counts the runs of its current round."""
        active = self.active()
        counted = 0
        for group in {r.group for r in active}:
            runs = [r for r in active if r.group == group]
            counted += min(len(runs), max(1, sum(1 for r in self.runs.values() if r.group == group and r.repeat == 0)))
        return counted

    def stop(self, run_id):
        """Ends the run's worker; returns once the process is gone and what it wrote has been read. The run
        is then stopped, or finished if the worker wrote run_finished before the stop. History is kept."""
        run = self.get(run_id)
        with self.lock:
            if run.status in ENDED:
                return run
            run.stopping = True
            reader = run.reader
            if reader is None:  # still queued: it never starts
                run.status = events.advance(run.status, events.RUN_STOPPED)
        if reader is None:
            self._ended(run, events.RUN_STOPPED)
            return run
        workers.end(run.proc)
        if reader is not threading.current_thread():
            reader.join()  # it drains the pipe, then decides: finished, or stopped
        return run

    def stop_all(self):
        for run in self.active():
            self.stop(run.id)

    def close(self):
        """Stops every run and ends the warm workers: nothing of ours is left running."""
        if self.pool:
            self.pool.close()
        self.stop_all()

    # ---- workers -------------------------------------------------------
    def _round_by_round(self, rounds, mode):
        for round_runs in rounds:
            if mode == "parallel":
                threads = max(1, self.cores // len(round_runs))
                readers = [self._launch(run, threads) for run in round_runs]
            else:
                readers = []
                for run in round_runs:
                    reader = self._launch(run, self.cores)
                    if reader:
                        reader.join()
            for reader in readers:
                if reader:
                    reader.join()

    def _launch(self, run, threads):
        log = self.records.folder(run.id) / "worker.log"
        spec = {
            "config": run.config.to_dict(),
            "data_dir": self.data_dir,
            "device": self.device,
            "threads": threads,
            "weights_path": str(self.weights_path(run.id)),
            "cache_dir": str(self.cache_dir),
            "autotune": self.autotune,
            # a run alone has every core: it may split over them (cnn/split.py); two runs keep a share each
            "data_parallel": self.data_parallel if threads == self.cores else "off",
            "log_path": str(log),  # a warm worker's stray output goes there once it has the run
        }
        # under the lock: a stop that came first wins, and one that comes later finds run.reader set
        with self.lock:
            if run.status != events.QUEUED:
                return None
            warm = self.pool.take(run, spec, log) if self.pool else None
            if warm:  # its reader, running since it started, now follows this run
                run.proc, run.reader = warm.proc, warm.reader
                return run.reader
            try:  # a cold start: spawned now, its spec on the command line
                run.proc = workers.spawn("cnn.worker", spec, log, piped=True)
            except OSError as exc:  # out of processes or file handles: say so rather than stay queued
                run.status = events.advance(run.status, events.RUN_FAILED)
                run.error = f"The training process could not start: {exc}"
            else:
                run.reader = threading.Thread(target=self._read, args=(run,), daemon=True)
                run.reader.start()
        if run.reader is None:
            self._ended(run, events.RUN_FAILED)
        return run.reader

    def _read(self, run):
        for name, payload in workers.read_events(run.proc):
            self._handle(run, name, payload)
        self._reaped(run)

    def _reaped(self, run):
        """The run's worker has ended and everything it wrote has been handled: record how the run ended."""
        workers.reap(run.proc)
        folder = self.records.folder(run.id)
        workers.remove_leftovers(folder)
        reason = None if run.status in ENDED else workers.crash_reason(run.proc, folder / "worker.log")
        with self.lock:
            if run.status in ENDED:  # it finished or failed by its own account
                return
            ended = events.RUN_STOPPED if run.stopping else events.RUN_FAILED  # ended on request, or crashed
            run.status = events.advance(run.status, ended)
            if ended == events.RUN_FAILED:
                run.error = reason
        self._ended(run, ended)

    def _handle(self, run, name, payload):
        payload = {"run_id": run.id, **payload}  # stored as sent, so history replays like live events
        with self.lock:
            if run.status in ENDED:
                return
            if name in run.metrics:
                run.metrics[name].append(payload)
            elif name in (events.RUN_STARTED, events.RUN_FINISHED):
                run.status = events.advance(run.status, name)
                run.info.update(payload)
            elif name == events.RUN_FAILED:
                run.status, run.error = events.advance(run.status, name), payload.get("error")
            else:
                return
        if name in (events.RUN_STARTED, events.EPOCH) or run.status in ENDED:
            self.records.save(run)  # a server that dies mid-run keeps the history up to the last epoch
        self.listener(name, payload)
        if name == events.RUN_FINISHED:
            self._analyse_later(run)
        if name in (events.RUN_STARTED, events.RUN_FINISHED, events.RUN_FAILED):
            self.analyses.poke()

    def _ended(self, run, name):
        """The run ended without the worker saying so (stopped, crashed, never started): record it, say so."""
        self.records.save(run)
        payload = {"run_id": run.id}
        if name == events.RUN_FAILED:
            payload["error"] = run.error
        self.listener(name, payload)
        if name == events.RUN_STOPPED:
            self._analyse_later(run)
        self.analyses.poke()

    # ---- analysis ------------------------------------------------------
    def _analyse_later(self, run):
        if not self.analyse or not self.weights_path(run.id).exists():
            return  # stopped before its first snapshot: nothing to analyse
        run.analysis = "pending"
        self.analyses.add(run)

    def resume_analyses(self):
        """Analyses that a stopped server never finished are made again."""
        for run in list(self.runs.values()):
            if run.status in (events.FINISHED, events.STOPPED) and run.analysis is None:
                self._analyse_later(run)

    def _analyse_now(self, run):
        info = dict(run.info)
        batches, epochs = run.metrics[events.BATCH], run.metrics[events.EPOCH]
        if "train_seconds" not in info and batches:  # stopped: measured up to its last batch
            info["train_seconds"] = batches[-1].get("train_seconds")
        if "peak_memory_bytes" not in info and epochs:
            info["peak_memory_bytes"] = epochs[-1].get("peak_memory_bytes")
        spec = {
            "config": run.config.to_dict(),
            "data_dir": self.data_dir,
            "device": info.get("device", self.device),  # where it trained, in the arithmetic it trained in
            "precision": info.get("precision", "fp32"),
            "threads": self.cores,
            "weights_path": str(self.weights_path(run.id)),
            "cache_dir": str(self.cache_dir),
            "out_path": str(self.analysis_path(run.id)),
            "info": info,
        }
        code = None
        try:
            process = workers.spawn("cnn.analysis", spec, self.records.folder(run.id) / "analysis.log")
            code = workers.reap(process)
        finally:  # whatever went wrong, the run's analysis ends as ready or failed, never pending for ever
            run.analysis = "ready" if code == 0 else "failed"
            self.records.save(run)
            self.listener(events.ANALYSIS_READY if code == 0 else events.ANALYSIS_FAILED, {"run_id": run.id})
