"""Analysis of ended runs: the engine's sums by hand, and the routes on real short runs."""

import pytest
import torch
from conftest import QUICK
from test_server import Listener, read_test_digits

from cnn import data
from cnn.analysis import calibration, confusion_matrix, count_macs, per_class_scores
from cnn.config import validate
from cnn.infer import activations
from cnn.models import build_model, mac_count


def test_precision_and_recall_match_a_hand_count():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 0, 1, 1, 2, 2])
    matrix = confusion_matrix(labels, preds)
    assert matrix[0].tolist()[:3] == [2, 1, 0] and matrix.sum() == 6
    scores = per_class_scores(matrix)
    # class 0: 2 of 2 predicted right, 2 of 3 found; class 1: 1 of 2, 1 of 2; class 2: 1 of 2, 1 of 1
    assert scores[0]["precision"] == 1 and scores[0]["recall"] == pytest.approx(2 / 3)
    assert scores[1]["precision"] == 0.5 and scores[1]["recall"] == 0.5
    assert scores[2]["precision"] == 0.5 and scores[2]["recall"] == 1
    assert scores[2]["f1"] == pytest.approx(2 / 3)
    assert scores[5] == {"precision": 0, "recall": 0, "f1": 0}  # a class never seen


def test_model_a_macs_match_the_hand_count():
    # conv1 16*1*9 per pixel on 28x28, conv2 32*16*9 on 14x14, conv3 64*32*9 on 7x7, head 3136*10
    by_hand = 16 * 9 * 28 * 28 + 32 * 16 * 9 * 14 * 14 + 64 * 32 * 9 * 7 * 7 + 7 * 7 * 64 * 10
    assert count_macs(build_model(validate({}))) == by_hand == 1_950_592


@pytest.mark.parametrize("channels, kernel", [([16, 32, 64], 3), ([8], 5), ([4, 6], 7), ([4, 6, 8, 5, 3, 2], 3)])
def test_macs_from_the_config_match_the_counted_layers(channels, kernel):
    cfg = validate({"channels": channels, "kernel_size": kernel})
    assert mac_count(cfg) == count_macs(build_model(cfg))


def test_calibration_error_of_an_overconfident_model():
    confidence = torch.tensor([0.9, 0.9, 0.9, 0.9])
    correct = torch.tensor([True, True, False, False])
    ece, bins = calibration(confidence, correct, bins=10)
    assert ece == pytest.approx(0.4)
    assert sum(b["count"] for b in bins) == 4


def test_activations_have_the_shapes_the_architecture_implies():
    model = build_model(validate({"channels": [4, 6, 8, 5]}))
    shapes = [(name, tuple(m.shape)) for name, m in activations(model, torch.zeros(1, 1, 28, 28), data.norm_of("mnist"))]
    assert shapes == [("conv1", (4, 28, 28)), ("conv2", (6, 14, 14)), ("conv3", (8, 7, 7)), ("conv4", (5, 7, 7))]


@pytest.fixture(scope="module")
def pair(server):
    """Two finished short runs with their analyses."""
    listener = Listener(server.url)
    a, b = server.start([{**QUICK, "train_samples": 3000}, {**QUICK, "channels": "4"}])
    for run_id in (a, b):
        listener.wait_for("analysis_ready", run_id)
        assert not listener.of("analysis_failed")
    listener.close()
    return a, b


def test_confusion_matrix_matches_the_reported_test_accuracy(server, pair):
    for run_id in pair:
        result = server.get(f"/api/runs/{run_id}/analysis").json()
        matrix = torch.tensor(result["confusion"])
        assert matrix.sum() == 10_000
        test_acc = server.get(f"/api/runs/{run_id}").json()["metrics"]["epoch"][-1]["test_acc"]
        assert matrix.diag().sum().item() / 10_000 == pytest.approx(test_acc, abs=1e-4)
        assert result["accuracy"] == pytest.approx(test_acc, abs=1e-4)
        assert result["size_bytes"] > 4 * result["params"] and result["latency_ms"] > 0 and result["throughput"] > 0
        assert 0 <= result["ece"] <= 1 and len(result["per_class"]) == 10
        assert result["train_seconds"] > 0 and result["peak_memory_bytes"] > 0


def test_only_one_got_it_right_and_confusion_cells_show_images(server, pair):
    a, b = pair
    answer = server.get(f"/api/compare?a={a}&b={b}").json()
    assert answer["count_only_a"] + answer["count_only_b"] > 0
    for item in answer["only_a"]:
        assert item["pred_a"] == item["label"] != item["pred_b"]
        assert len(item["image"]) == 1 and len(item["image"][0]) == 28  # (channels, height, width)
    cell = server.get(f"/api/runs/{a}/confusion?true=3&pred=3").json()
    result = server.get(f"/api/runs/{a}/analysis").json()
    assert cell["count"] == result["confusion"][3][3] and len(cell["images"]) == min(24, cell["count"])


def test_gradients_and_activations_of_a_run(server, pair, data_dir):
    a, _ = pair
    layers = server.get(f"/api/runs/{a}/gradients").json()["layers"]
    assert [layer["name"] for layer in layers] == ["conv1", "conv2", "conv3", "fc"]
    assert all(len(layer["mean_abs"]) == len(layer["samples_seen"]) > 0 for layer in layers)
    image = read_test_digits(data_dir, 1)[0][0].tolist()
    maps = server.post(f"/api/runs/{a}/activations", json={"image": image}).json()["layers"]
    assert [m["shape"] for m in maps] == [[16, 28, 28], [32, 14, 14], [64, 7, 7]]
    assert max(v for row in maps[0]["maps"][0] for v in row) >= 0


def test_analysis_of_a_running_run_is_409(server):
    (run_id,) = server.start([{"epochs": 5}])
    try:
        answer = server.get(f"/api/runs/{run_id}/analysis")
        assert answer.status_code == 409 and "analysis is computed when it ends" in answer.json()["error"]
    finally:
        server.post(f"/api/runs/{run_id}/stop")
    assert server.get("/api/runs/abcdefabcdef/analysis").status_code == 404
