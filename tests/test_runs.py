"""The run manager without a server: real worker processes, real files, races provoked on purpose."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from conftest import ROOT

from cnn import events
from cnn.analysis_queue import AnalysisQueue
from cnn.config import validate
from cnn.plugins import save_weights
from cnn.records import Records, Run
from cnn.runs import RunManager

TINY = {"train_samples": 256, "epochs": 1, "channels": "4"}
LONG = {"epochs": 50, "channels": "4"}


class Recorder:
    """A RunManager listener that records every event; `hold` names an event to block on until released."""

    def __init__(self, hold=None):
        self.events, self.changed = [], threading.Condition()
        self.hold, self.held, self.release = hold, threading.Event(), threading.Event()

    def __call__(self, name, payload):
        with self.changed:
            self.events.append((name, payload))
            self.changed.notify_all()
        if self.hold and self.hold(name, payload):
            self.held.set()
            self.release.wait()

    def of(self, name):
        return [p for n, p in self.events if n == name]

    def wait_for(self, name, timeout=120):
        with self.changed:
            assert self.changed.wait_for(lambda: self.of(name), timeout), f"no {name}; got {self.events}"


def wait_until(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def dead_pid():
    """The pid of a process that has ended: the name a snapshot it cut short would carry."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_stop_after_the_worker_wrote_run_finished_leaves_the_run_finished(data_dir, tmp_path):
    # The reader is held at the last epoch event, so the real worker writes run_finished into the pipe
    # and exits before the stop lands.
    recorder = Recorder(hold=lambda name, p: name == events.EPOCH and p["epoch"] == TINY["epochs"])
    manager = RunManager(data_dir, tmp_path, "cpu", recorder, analyse=True)
    (run,) = manager.start([validate(TINY)])
    assert recorder.held.wait(120), recorder.events
    wait_until(lambda: run.proc.poll() is not None)  # the worker is gone; run_finished waits in the pipe
    answer = []
    stopper = threading.Thread(target=lambda: answer.append(manager.stop(run.id).status))
    stopper.start()
    wait_until(lambda: run.stopping)
    recorder.release.set()
    stopper.join(60)
    assert answer == [events.FINISHED] and run.status == events.FINISHED
    assert recorder.of(events.RUN_FINISHED) and not recorder.of(events.RUN_STOPPED)
    assert not recorder.of(events.RUN_FAILED)
    recorder.wait_for(events.ANALYSIS_READY)  # a finished run is analysed
    assert json.loads((tmp_path / run.id / "run.json").read_text())["status"] == events.FINISHED


@pytest.mark.parametrize("how", ["stop", "sigkill"])
def test_no_temporary_snapshot_survives_a_worker(data_dir, tmp_path, how):
    recorder = Recorder()
    manager = RunManager(data_dir, tmp_path, "cpu", recorder, analyse=False)
    (run,) = manager.start([validate(LONG)])
    recorder.wait_for(events.BATCH)
    (tmp_path / run.id / f"weights.pt.tmp{dead_pid()}").write_bytes(b"half a file")  # as SIGKILL leaves it
    if how == "stop":
        assert manager.stop(run.id).status == events.STOPPED
        assert len(recorder.of(events.RUN_STOPPED)) == 1 and not recorder.of(events.RUN_FAILED)
    else:
        os.kill(run.proc.pid, signal.SIGKILL)
        recorder.wait_for(events.RUN_FAILED)
        assert run.status == events.FAILED and "killed" in run.error
    assert not list((tmp_path / run.id).glob("weights.pt.tmp*"))


# The worker's own signal handling, around a snapshot whose torch.save writes half a file and blocks.
SNAPSHOT_CUT_SHORT = """
import sys, time, torch
from cnn import plugins, worker
worker.exit_on_sigterm()
def half_a_save(obj, path):
    with open(path, "wb") as f:
        f.write(b"half a file")
    print("saving", flush=True)
    time.sleep(120)
torch.save = half_a_save
plugins.save_weights(torch.nn.Linear(2, 2), sys.argv[1])
"""


def test_sigterm_during_a_snapshot_leaves_no_temporary_file_and_the_old_weights(tmp_path):
    path = tmp_path / "weights.pt"
    before = torch.nn.Linear(2, 2)
    save_weights(before, path)
    cmd = [sys.executable, "-c", SNAPSHOT_CUT_SHORT, str(path)]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "saving"
    assert list(tmp_path.glob("weights.pt.tmp*"))  # mid-write
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM  # a clean exit, not death by the signal
    child.stdout.close()
    assert not list(tmp_path.glob("weights.pt.tmp*"))
    kept = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.equal(kept[k], v) for k, v in before.state_dict().items())


def test_analyses_wait_for_training_to_end_one_at_a_time():
    busy, checked, done = [True], threading.Event(), []
    started, finish = threading.Event(), threading.Event()

    def is_busy():
        checked.set()
        return busy[0]

    def work(run):
        done.append(run)
        started.set()
        finish.wait()

    queue = AnalysisQueue(is_busy, work)
    queue.add("a")
    assert checked.wait(10)
    with queue.changed:  # held by the queue until it waits: it looked, found a run training, and waits
        assert done == []
    checked.clear()
    queue.poke()  # something changed, but a run still trains
    assert checked.wait(10)
    with queue.changed:
        assert done == []
    busy[0] = False
    queue.add("b")
    assert started.wait(10) and done == ["a"]
    with queue.changed:  # "a" is being analysed: "b" waits its turn
        assert list(queue.waiting) == ["b"]
    finish.set()
    wait_until(lambda: done == ["a", "b"])


def test_a_damaged_record_is_skipped_and_a_record_saved_mid_run_comes_back_stopped(tmp_path):
    records = Records(tmp_path, threading.Lock())
    run = Run("0123456789ab", validate(TINY), "parallel")
    run.status = events.RUNNING
    records.create(run)
    records.save(run)
    (tmp_path / "ba9876543210").mkdir()
    (tmp_path / "ba9876543210" / "run.json").write_text("{not json")
    (restored,) = records.load().values()
    assert restored.id == run.id and restored.status == events.STOPPED and "server stopped" in restored.error


def test_a_restarted_manager_removes_what_dead_workers_left_but_not_what_live_ones_write(tmp_path):
    records = Records(tmp_path, threading.Lock())
    run = Run("0123456789ab", validate(TINY), "parallel")
    records.create(run)
    records.save(run)
    dead, live = tmp_path / run.id / f"weights.pt.tmp{dead_pid()}", tmp_path / run.id / f"weights.pt.tmp{os.getpid()}"
    dead.write_bytes(b"half a file")
    live.write_bytes(b"being written")  # by a worker of another manager on the same folder
    RunManager(ROOT, tmp_path, "cpu", analyse=False)
    assert not dead.exists() and live.exists()
