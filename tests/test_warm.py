"""Warm workers: started ahead of their runs (torch imported, MNIST open), taken by the next run, replaced,
and never left behind. Real worker processes, a real server and a real Socket.IO client."""

import os
import signal
import time
from pathlib import Path

from conftest import QUICK, start_server, stop_server
from test_runs import Recorder
from test_server import Listener

from cnn import events, workers
from cnn.config import validate
from cnn.datasets import FASHION
from cnn.runs import RunManager

TINY = {"train_samples": 256, "epochs": 1, "channels": "4"}


def gone(pid):
    """True when the process has ended (a zombie counts: it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def eventually(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def ready_pid(manager, other_than=None):
    eventually(lambda: [p for p in manager.warm_status()["ready"] if p != other_than])
    (pid,) = manager.warm_status()["ready"]
    return pid


def train(manager, recorder, config):
    (run,) = manager.start([validate(config)])
    recorder.wait_for(events.RUN_FINISHED)
    eventually(lambda: run.status in events.ENDED)
    return run


def measured(recorder):
    """The epochs' numbers that depend on the data and the arithmetic only, not on the clock."""
    timed = {"seconds", "eval_seconds", "peak_memory_bytes", "run_id"}
    return [{k: v for k, v in p.items() if k not in timed} for p in recorder.of(events.EPOCH)]


def test_a_warm_worker_trains_as_a_cold_one_and_is_replaced(data_dir, tmp_path):
    common = {"cores": 1, "analyse": False, "autotune": False, "cache_dir": tmp_path / "cache"}
    recorder = Recorder()
    manager = RunManager(data_dir, tmp_path / "warm", "cpu", recorder, warm=1, **common)
    try:
        first = ready_pid(manager)
        run = train(manager, recorder, TINY)
        assert run.proc.pid == first and run.status == events.FINISHED  # it trained on the warm worker
        assert recorder.of(events.BATCH)
        second = ready_pid(manager, other_than=first)  # a replacement took its place

        cold_recorder = Recorder()
        cold = RunManager(data_dir, tmp_path / "cold", "cpu", cold_recorder, **common)
        assert train(cold, cold_recorder, TINY).status == events.FINISHED
        assert measured(recorder) == measured(cold_recorder)  # the same data and seed: the same numbers

        fashion = train(manager, recorder, {**TINY, "dataset": "fashion_mnist"})
        assert fashion.proc.pid == second and fashion.status == events.FINISHED
        assert fashion.info["dataset"] == "fashion_mnist" and fashion.info["classes"] == list(FASHION)
        assert fashion.info["test_samples"] == 10000 and fashion.metrics[events.EPOCH][0]["test_acc"] > 0.2
    finally:
        manager.close()


def test_a_warm_worker_that_dies_is_replaced_and_close_leaves_none(data_dir, tmp_path):
    manager = RunManager(data_dir, tmp_path, "cpu", Recorder(), analyse=False, cache_dir=tmp_path / "cache", warm=1)
    try:
        first = ready_pid(manager)
        os.kill(first, signal.SIGKILL)
        second = ready_pid(manager, other_than=first)
        assert gone(first) and second != first
    finally:
        manager.close()
    assert gone(second) and manager.warm_status()["ready"] == []
    time.sleep(1.5)  # longer than the pause before a replacement: a closed pool starts none
    assert manager.warm_status() == {"size": 1, "ready": [], "starting": []}


class Pool:
    """A WarmPool on its own, recording what its workers' runs say and which runs ended."""

    def __init__(self, size, setting, log_path):
        self.said, self.ended = [], []
        handle = lambda run, name, payload: self.said.append((run, name, payload))  # noqa: E731
        self.pool = workers.WarmPool(size, setting, log_path, handle=handle, ended=self.ended.append)

    def pids(self):
        status = self.pool.status()
        return status["ready"] + status["starting"]


def setting_of(data_dir, tmp_path):
    return {"dataset": "mnist", "data_dir": str(data_dir), "cache_dir": str(tmp_path / "cache"), "device": "cpu"}


def refused_spec(data_dir, log_path):
    """A run whose config the worker refuses at once: it says run_failed and ends, having trained nothing."""
    return {"config": {"epochs": 0}, "data_dir": str(data_dir), "log_path": str(log_path)}


def test_a_taken_worker_lifts_the_hold_on_starts_that_deaths_put(data_dir, tmp_path):
    pool = Pool(2, setting_of(data_dir, tmp_path), tmp_path / "warm.log")
    try:
        eventually(lambda: len(pool.pool.status()["ready"]) == 2)
        dying, living = pool.pool.status()["ready"]
        pool.pool.pause = 32.0  # as after several deaths in a row: the next one holds starts back for a minute
        os.kill(dying, signal.SIGKILL)
        eventually(lambda: pool.pids() == [living])
        taken = pool.pool.take("run", refused_spec(data_dir, tmp_path / "run.log"), tmp_path / "run.log")
        assert taken.proc.pid == living
        eventually(lambda: pool.ended == ["run"], 30)
        assert [name for _, name, _ in pool.said] == [events.RUN_FAILED]
        workers.reap(taken.proc)
        eventually(lambda: pool.pids(), 20)  # a worker that could be taken lifts the hold: new ones start
    finally:
        pool.pool.close()


def test_a_start_that_fails_is_logged_and_tried_again(data_dir, tmp_path, caplog):
    setting = {**setting_of(data_dir, tmp_path), "cache_dir": tmp_path / "cache"}  # a Path: no JSON for it
    pool = Pool(1, setting, tmp_path / "warm.log")
    try:
        eventually(lambda: "starting a warm worker" in caplog.text, 10)
        assert "TypeError" in caplog.text and pool.pids() == []
        setting["cache_dir"] = str(setting["cache_dir"])  # the cause goes away: the starter is still there
        eventually(lambda: pool.pool.status()["ready"], 60)
    finally:
        pool.pool.close()


def test_the_warm_workers_log_is_moved_aside_once_it_grows_past_its_limit(data_dir, tmp_path):
    log = tmp_path / "warm.log"
    log.write_bytes(b"an old line\n" * (workers.LOG_LIMIT // 12 + 1))
    pool = Pool(1, setting_of(data_dir, tmp_path), log)
    try:
        eventually(lambda: pool.pids(), 10)
        assert log.stat().st_size < workers.LOG_LIMIT
        assert (tmp_path / "warm.log.1").stat().st_size > workers.LOG_LIMIT
    finally:
        pool.pool.close()


def test_a_worker_taken_while_it_warms_up_and_dying_there_leaves_its_reason_in_the_run_log(data_dir, tmp_path):
    broken = {"data_dir": str(data_dir), "cache_dir": str(tmp_path / "cache")}  # no dataset: its warm-up fails
    pool = Pool(1, broken, tmp_path / "warm.log")
    log = tmp_path / "run.log"
    try:
        eventually(lambda: pool.pool.status()["starting"], 10)  # taken at once: it is still importing torch
        taken = pool.pool.take("run", refused_spec(data_dir, log), log)
        assert taken is not None and not taken.ready
        eventually(lambda: pool.ended == ["run"], 60)
        workers.reap(taken.proc)
        # what the run manager tells the user, as for a cold worker that crashed
        assert workers.crash_reason(taken.proc, log) == "The training process exited with code 1: KeyError: 'dataset'"
    finally:
        pool.pool.close()


def warm_children(pid):
    """Pids of the server's warm workers (they carry --warm on their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and b"--warm" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_a_server_with_warm_workers_streams_a_run_and_takes_them_along_when_it_dies(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_WARM_WORKERS", "1")
    api = start_server(data_dir, tmp_path / "runs", tmp_path / "log")
    listener = None
    try:
        eventually(lambda: warm_children(api.process.pid), 60)
        (first,) = warm_children(api.process.pid)
        listener = Listener(api.url)
        (run_id,) = api.start([QUICK])
        listener.wait_for("batch", run_id)
        listener.wait_for("run_finished", run_id)
        assert api.get(f"/api/runs/{run_id}").json()["status"] == "finished"
        eventually(lambda: gone(first) and warm_children(api.process.pid), 60)  # it ran the run; a new one waits
        seen = warm_children(api.process.pid)
        assert first not in seen
        api.process.send_signal(signal.SIGKILL)  # no chance to clean up: the workers see their parent go
        api.process.wait(30)
        eventually(lambda: all(gone(pid) for pid in seen), 10)
    finally:
        if listener:
            listener.close()
        stop_server(api)
