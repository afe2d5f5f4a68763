"""The engine from the command line, as people who script experiments use it."""

import json
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
