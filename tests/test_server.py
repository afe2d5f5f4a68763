"""The contract end to end: a real server, real Socket.IO clients, real worker processes."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import socketio
from conftest import QUICK, start_server, stop_server


class Listener:
    """A real Socket.IO client that records every event it receives."""

    def __init__(self, url):
        self.events, self.changed = [], threading.Condition()
        self.sio = socketio.Client()
        self.sio.on("*", self._record)
        self.sio.connect(url, wait_timeout=10)

    def _record(self, name, payload=None):
        with self.changed:
            self.events.append((name, payload))
            self.changed.notify_all()

    def of(self, name, run_id=None):
        return [p for n, p in list(self.events) if n == name and (run_id is None or p.get("run_id") == run_id)]

    def wait_for(self, name, run_id=None, count=1, timeout=120):
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.of(name, run_id)) >= count, timeout):
                raise AssertionError(f"no {name} for {run_id} within {timeout}s; got {self.names()}")
        return self.of(name, run_id)

    def names(self):
        return sorted({n for n, _ in self.events})

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def listener(server):
    client = Listener(server.url)
    yield client
    client.close()


def worker_pid(run_id):
    """The worker's command line carries its run id (in the weights path)."""
    out = subprocess.run(["pgrep", "-f", f"cnn.worker.*{run_id}"], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out.strip() else None


def order(listener, name, run_id):
    """Position of the first `name` event for `run_id` (or of any `name` event when run_id is None)."""
    return next(
        i for i, (n, p) in enumerate(listener.events) if n == name and (run_id is None or p.get("run_id") == run_id)
    )


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_two_runs_stream_every_event(server, listener, mode):
    a, b = server.start([QUICK, {**QUICK, "channels": "8-8-8"}], mode)
    for run_id in (a, b):
        listener.wait_for("run_finished", run_id)
        assert listener.of("run_started", run_id) and listener.of("epoch", run_id)
        batches = listener.of("batch", run_id)
        assert batches[-1]["samples_seen"] == QUICK["train_samples"]
        assert all(0 <= p["acc"] <= 1 and p["loss"] > 0 and p["samples_per_s"] > 0 for p in batches)
        run = server.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "finished" and run["metrics"]["batch"] == batches
        assert 0 <= run["metrics"]["epoch"][0]["test_acc"] <= 1
    (created,) = [p for p in listener.of("runs_created") if p["runs"][0]["id"] == a]
    group = created["group"]
    assert [(r["id"], r["slot"], r["group"]) for r in created["runs"]] == [(a, 0, group), (b, 1, group)]
    assert order(listener, "runs_created", None) < order(listener, "run_started", a)
    if mode == "sequential":  # B waits for A
        assert order(listener, "run_finished", a) < order(listener, "run_started", b)
    cores = os.cpu_count()
    allotted = max(1, cores // 2) if mode == "parallel" else cores  # parallel runs share the cores
    for run_id in (a, b):
        started = listener.of("run_started", run_id)[0]
        threads, chosen = started["threads"], started["fast_form"]
        if threads != allotted:  # fewer only where the chosen form timed faster that way (cnn/forms.py)
            label = f"{chosen['form']}/{chosen['precision']}"
            assert threads < allotted and chosen["rates"][f"{label}/{threads}t"] >= chosen["rates"][label]


def test_a_late_client_gets_the_history(server):
    (run_id,) = server.start([QUICK])
    server.wait(run_id)
    late = Listener(server.url)
    try:
        history = late.wait_for("history")[0]
        runs = {r["id"]: r for r in history["runs"]}
        assert runs[run_id]["status"] == "finished"
        assert runs[run_id]["metrics"] == server.get(f"/api/runs/{run_id}").json()["metrics"]
        assert late.events[0][0] == "history"  # before anything else
    finally:
        late.close()


def test_runs_are_listed_newest_first(server):
    first = server.start([QUICK])[0]
    second = server.start([QUICK])[0]
    ids = [r["id"] for r in server.get("/api/runs").json()["runs"]]
    assert ids.index(second) < ids.index(first)
    for run_id in (first, second):
        server.wait(run_id)


def test_stop_ends_the_worker_and_keeps_history(server, listener):
    (run_id,) = server.start([{"epochs": 5}])
    listener.wait_for("batch", run_id, count=3)
    pid = worker_pid(run_id)
    answer = server.post(f"/api/runs/{run_id}/stop")
    assert answer.status_code == 200 and answer.json()["status"] == "stopped"
    assert worker_pid(run_id) is None and pid is not None
    seen = len(listener.of("batch", run_id))
    time.sleep(1.5)
    assert len(listener.of("batch", run_id)) == seen  # nothing after the stop
    listener.wait_for("run_stopped", run_id)
    run = server.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "stopped" and len(run["metrics"]["batch"]) >= 3


def test_a_killed_worker_fails_its_run_and_the_other_finishes(server, listener):
    a, b = server.start([{"epochs": 5}, {**QUICK, "epochs": 2}])
    listener.wait_for("batch", a)
    os.kill(worker_pid(a), signal.SIGKILL)
    failed = listener.wait_for("run_failed", a)[0]
    assert "killed" in failed["error"]
    listener.wait_for("run_finished", b)
    assert server.get(f"/api/runs/{a}").json()["status"] == "failed"
    assert server.get("/api/runs").status_code == 200


def test_a_stopped_queued_run_never_starts(server, listener):
    a, b = server.start([{"epochs": 5}, QUICK], "sequential")
    assert server.post(f"/api/runs/{b}/stop").json()["status"] == "stopped"
    listener.wait_for("batch", a)
    assert server.post(f"/api/runs/{a}/stop").json()["status"] == "stopped"
    for _ in range(20):  # a worker would need 2-3 s to report; look for its process meanwhile
        assert worker_pid(b) is None
        time.sleep(0.25)
    assert not listener.of("run_started", b) and server.get(f"/api/runs/{b}").json()["info"] == {}


def read_test_digits(data_dir, count):
    raw = (data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:count] / 255.0
    labels = np.frombuffer((data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").read_bytes(), np.uint8, offset=8)
    return images, labels[:count]


def test_predict_reads_real_digits(server, data_dir):
    (run_id,) = server.start([{"train_samples": 6000, "epochs": 1}])
    server.wait(run_id)
    images, labels = read_test_digits(data_dir, 40)
    right = 0
    for image, label in zip(images, labels, strict=True):
        answer = server.post("/api/predict", json={"image": image.tolist(), "runs": [run_id]}).json()
        (prediction,) = answer["predictions"]
        assert prediction["run_id"] == run_id
        assert sum(prediction["probs"]) == pytest.approx(1, abs=1e-4)
        right += prediction["label"] == label
    assert right >= 34  # about 95% of 40


def test_predict_works_during_training_and_says_when_there_are_no_weights(server, listener, data_dir):
    a, b = server.start([{"epochs": 5}, QUICK], "sequential")
    image = read_test_digits(data_dir, 1)[0][0].tolist()
    queued = server.post("/api/predict", json={"image": image, "runs": [b]})
    assert queued.status_code == 409 and "no weights yet" in queued.json()["error"]
    deadline = time.time() + 60
    while (answer := server.post("/api/predict", json={"image": image, "runs": [a]})).status_code == 409:
        assert time.time() < deadline, "no weight snapshot within 60 s of training"
        time.sleep(0.5)
    assert answer.status_code == 200 and not listener.of("run_finished", a)
    for run_id in (a, b):
        server.post(f"/api/runs/{run_id}/stop")


def test_workers_do_not_outlive_the_server(data_dir, tmp_path):
    api = start_server(data_dir, tmp_path / "runs", tmp_path / "log")
    try:
        (run_id,) = api.start([{"epochs": 5}])
        deadline = time.time() + 30
        while worker_pid(run_id) is None and time.time() < deadline:
            time.sleep(0.2)
        assert worker_pid(run_id) is not None
        api.process.send_signal(signal.SIGKILL)  # no chance to clean up
        api.process.wait()
        deadline = time.time() + 5
        while worker_pid(run_id) is not None and time.time() < deadline:
            time.sleep(0.2)
        assert worker_pid(run_id) is None
    finally:
        stop_server(api)


def test_runs_survive_a_server_restart(data_dir, tmp_path):
    api = start_server(data_dir, tmp_path / "runs", tmp_path / "log")
    try:
        (run_id,) = api.start([QUICK])
        before = api.wait(run_id)
    finally:
        stop_server(api)
    api = start_server(data_dir, tmp_path / "runs", tmp_path / "log2")
    try:
        after = api.get(f"/api/runs/{run_id}").json()
        assert after["status"] == "finished" and after["metrics"] == before["metrics"]
    finally:
        stop_server(api)


def test_too_many_runs_at_once_are_refused_with_a_reason(server, listener):
    started = server.start([{"epochs": 5}, QUICK], "sequential") + server.start([{"epochs": 5}, QUICK], "sequential")
    try:
        answer = server.post("/api/runs", json={"models": [QUICK]})
        assert answer.status_code == 409 and "at most 4" in answer.json()["error"]
    finally:
        for run_id in started:
            server.post(f"/api/runs/{run_id}/stop")
    assert server.post("/api/runs", json={"models": [{**QUICK, "train_samples": 64}]}).status_code == 202


def pipes(pid):
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("pipe:"))


def test_a_server_killed_mid_run_comes_back_with_its_history(data_dir, tmp_path):
    runs_dir = tmp_path / "runs"
    for name, text in (("aaaaaaaaaaaa", "[]"), ("bbbbbbbbbbbb", "{}"), ("cccccccccccc", '{"id": 5}')):
        (runs_dir / name).mkdir(parents=True)
        (runs_dir / name / "run.json").write_text(text)  # damaged records are skipped
    api = start_server(data_dir, runs_dir, tmp_path / "log")
    try:
        (run_id,) = api.start([{"train_samples": 2048, "epochs": 50, "channels": "4"}])
        deadline = time.time() + 60
        while not api.get(f"/api/runs/{run_id}").json()["metrics"]["epoch"]:
            assert time.time() < deadline
            time.sleep(0.2)
        api.process.send_signal(signal.SIGKILL)
        api.process.wait()
    finally:
        stop_server(api)
    api = start_server(data_dir, runs_dir, tmp_path / "log2")
    try:
        run = api.get(f"/api/runs/{run_id}").json()
        assert run["status"] == "stopped" and "server stopped" in run["error"]
        assert len(run["metrics"]["epoch"]) >= 1 and [r["id"] for r in api.get("/api/runs").json()["runs"]] == [run_id]
        deadline = time.time() + 90
        while api.get(f"/api/runs/{run_id}").json()["analysis"] != "ready":  # made again after the restart
            assert time.time() < deadline
            time.sleep(0.5)
        before = pipes(api.process.pid)
        for _ in range(2):
            new_id = api.start([{**QUICK, "train_samples": 64}])[0]
            deadline = time.time() + 90
            while api.get(f"/api/runs/{new_id}").json()["analysis"] != "ready":  # its last process is done
                assert time.time() < deadline
                time.sleep(0.5)
        assert pipes(api.process.pid) <= before + 1  # ended workers leave no open pipes behind
    finally:
        stop_server(api)
