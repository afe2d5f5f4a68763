"""The engine from the command line, as people who script experiments use it."""

import json
import os
import signal
import subprocess
import sys

from conftest import ROOT


def cli(tmp_path, data_dir, *configs):
    paths = []
    for i, cfg in enumerate(configs):
        path = tmp_path / f"model{i}.json"
        path.write_text(json.dumps(cfg))
        paths += ["--config", str(path)]
    cmd = [sys.executable, "-m", "cnn", "train", "--data-dir", str(data_dir), *paths]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_two_models_print_json_lines_and_progress_bars(tmp_path, data_dir):
    done = cli(tmp_path, data_dir, {"train_samples": 512, "epochs": 1}, {"train_samples": 512, "channels": "4-4"})
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    finished = {e["run_id"] for e in events if e["event"] == "run_finished"}
    assert len(finished) == 2
    started = [e for e in events if e["event"] == "run_started"]
    assert sorted(e["params"] for e in started) == sorted([54666, 4 * 10 + 4 * 37 + 10 * (4 * 49 + 1)])
    assert "16-32-64" in done.stderr and "4-4" in done.stderr  # the bars, named after the models


def test_missing_data_names_the_folder(tmp_path):
    (tmp_path / "MNIST").write_text("not a folder")  # neither readable nor downloadable, online or not
    done = cli(tmp_path, tmp_path, {"epochs": 1})
    assert done.returncode == 1
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events] == ["runs_created", "run_failed"]
    assert str(tmp_path / "MNIST" / "raw") in events[1]["error"]


def test_a_bad_config_file_is_named(tmp_path, data_dir):
    done = cli(tmp_path, data_dir, {"kernel_size": 4})
    assert done.returncode != 0 and "model0.json" in done.stderr and "kernel_size" in done.stderr


def test_ctrl_c_stops_the_runs_and_says_so(tmp_path, data_dir):
    path = tmp_path / "long.json"
    path.write_text(json.dumps({"epochs": 50, "channels": "4"}))
    runs_dir = tmp_path / "runs"  # its path is in the worker's command line: a name to look for
    cmd = [sys.executable, "-m", "cnn", "train", "--data-dir", str(data_dir), "--config", str(path)]
    cmd += ["--config", str(path), "--runs-dir", str(runs_dir)]
    process = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    started = set()
    for line in process.stdout:
        event = json.loads(line)
        started |= {event["run_id"]} if event["event"] == "batch" else set()
        if len(started) == 2:
            break
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
    events = [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=30) == 130
    assert {e["run_id"] for e in events if e["event"] == "run_stopped"} == started
    assert not [e for e in events if e["event"] == "run_failed"]
    assert subprocess.run(["pgrep", "-f", str(runs_dir)], capture_output=True).returncode == 1  # no worker left
