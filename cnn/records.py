"""Run records on disk: one folder per run holding run.json (config, status, metrics), weights.pt and
analysis.json. A record the server saved mid-run comes back stopped; a damaged one is skipped.
"""

import json
import os
import re
import threading
import time
from pathlib import Path

from . import events
from .config import ConfigError, validate

ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")  # ids never name a path


class Run:
    def __init__(self, run_id, config, mode, group=None, slot=0, repeat=0, repeats=1):
        self.id, self.config, self.mode = run_id, config, mode
        self.group, self.slot = group or run_id, slot  # runs started together share a group; slot 0 is A
        self.repeat, self.repeats = repeat, repeats  # which of the group's seeds of this slot, of how many
        self.status, self.error = events.QUEUED, None
        self.created = time.time()
        self.info = {}  # what the worker reported at run_started and run_finished
        self.metrics = {events.BATCH: [], events.EPOCH: [], events.GRADIENTS: []}
        self.proc = self.reader = None  # the worker process and the thread reading its events
        self.stopping = False  # a stop was asked for: the worker's end is a stop, not a crash
        self.analysis = None  # None, "pending", "ready" or "failed"

    def summary(self, metrics=True):
        out = {
            "id": self.id,
            "config": self.config.to_dict(),
            "mode": self.mode,
            "group": self.group,
            "slot": self.slot,
            "seed": self.config.seed,
            "repeat": self.repeat,
            "repeats": self.repeats,
            "status": self.status,
            "error": self.error,
            "created": self.created,
            "info": self.info,
            "analysis": self.analysis,
        }
        if metrics:
            out["metrics"] = self.metrics
        return out


class Records:
    """The runs folder. `lock` guards the runs' state while a record is written from it."""

    def __init__(self, runs_dir, lock):
        self.dir, self.lock = Path(runs_dir), lock
        self.dir.mkdir(parents=True, exist_ok=True)

    def folder(self, run_id):
        return self.dir / run_id

    def weights_path(self, run_id):
        return self.folder(run_id) / "weights.pt"

    def analysis_path(self, run_id):
        return self.folder(run_id) / "analysis.json"

    def create(self, run):
        self.folder(run.id).mkdir(parents=True)

    def save(self, run):
        path = self.folder(run.id) / "run.json"
        tmp = path.with_name(f"run.json.{threading.get_ident()}")  # one per thread: saves may overlap
        with self.lock:
            text = json.dumps(run.summary())
        tmp.write_text(text)
        os.replace(tmp, path)

    def load(self):
        """-> {id: Run} of every readable record."""
        runs = {}
        for path in self.dir.glob("*/run.json"):
            try:
                run = self._restore(json.loads(path.read_text()))
            except (ValueError, KeyError, TypeError, AttributeError, ConfigError):
                continue  # a damaged record is skipped, not fatal
            if ID_PATTERN.match(run.id) and path.parent.name == run.id:
                runs[run.id] = run
        return runs

    def _restore(self, saved):
        run = Run(saved["id"], validate(saved["config"]), saved["mode"], saved["group"], saved["slot"])
        run.repeat, run.repeats = int(saved.get("repeat", 0)), int(saved.get("repeats", 1))
        run.status, run.error = saved["status"], saved.get("error")
        run.created, run.info, run.metrics = float(saved["created"]), dict(saved["info"]), dict(saved["metrics"])
        if run.status not in events.ENDED:  # the server stopped while it trained; its worker died with it
            run.status = events.STOPPED
            run.error = "The server stopped during this run; its history up to the last finished epoch is kept."
        run.analysis = "ready" if self.analysis_path(run.id).exists() else None
        return run
