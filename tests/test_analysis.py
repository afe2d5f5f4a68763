"""Analysis of ended runs: the engine's sums by hand, and the routes on real short runs."""

import pytest
import torch
from conftest import QUICK, server_in
from test_server import Listener, read_test_digits
from torch.nn import functional as F

from cnn import data
from cnn.analysis import calibration, confusion_matrix, count_macs, per_class_scores
from cnn.config import PRESETS, validate
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


EVERY_TYPE = [
    {"type": "conv", "out": 8, "kernel": 5, "stride": 2},
    {"type": "batchnorm"},
    {"type": "gelu"},
    {"type": "avgpool", "size": 3, "stride": 2},
    {"type": "conv", "out": 6, "kernel": 3, "padding": 1},
    {"type": "leaky_relu"},
    {"type": "maxpool"},
    {"type": "conv", "out": 5, "kernel": 1, "padding": "valid"},
    {"type": "sigmoid"},
    {"type": "dropout", "p": 0.2},
    {"type": "flatten"},
    {"type": "linear", "out": 12},
    {"type": "tanh"},
    {"type": "batchnorm"},
    {"type": "relu"},
]


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (3, 64, 64)])
@pytest.mark.parametrize("preset", ["lab", "two_conv", "resnet18", "every type"])
def test_macs_counted_in_a_forward_pass_match_the_declared_layers(preset, shape):
    values = {"layers": EVERY_TYPE} if preset == "every type" else PRESETS[preset]["values"]
    cfg = validate({k: v for k, v in values.items() if v is not None})
    counted = count_macs(build_model(cfg, shape, 7), shape)  # in train mode too: batch norm sees one image
    assert counted == mac_count(cfg, shape, 7) > 0
    if (preset, shape) == ("lab", (3, 32, 32)):
        assert mac_count(cfg, shape, 10) == 6_654_464


def test_maps_pass_the_activation_that_follows_a_pool_or_a_flatten():
    # the classic model pools before its ReLU and moves its last ReLU past the flatten: same function
    model = build_model(validate({"channels": [4]})).eval()
    image = torch.rand(1, 1, 28, 28) * 255
    ((name, conv1),) = activations(model, image, data.norm_of("mnist"))
    raw = model[0](data.normalise(image, data.norm_of("mnist")))[0]
    assert name == "conv1" and torch.allclose(conv1, raw.relu(), atol=1e-5)
    # an in-place leaky ReLU is applied once, after the batch norm
    cfg = validate({"layers": [{"type": "conv", "out": 3, "kernel": 3}, {"type": "batchnorm"}, {"type": "leaky_relu"}]})
    model = build_model(cfg).eval()
    x = data.normalise(image, data.norm_of("mnist"))
    ((_, conv1),) = activations(model, image, data.norm_of("mnist"))
    assert torch.allclose(conv1, F.leaky_relu(model[1](model[0](x)))[0], atol=1e-5)


def test_calibration_error_of_an_overconfident_model():
    confidence = torch.tensor([0.9, 0.9, 0.9, 0.9])
    correct = torch.tensor([True, True, False, False])
    ece, bins = calibration(confidence, correct, bins=10)
    assert ece == pytest.approx(0.4)
    assert sum(b["count"] for b in bins) == 4


def test_activations_have_the_shapes_the_architecture_implies():
    model = build_model(validate({"channels": [4, 6, 8, 5]}))
    shapes = [
        (name, tuple(m.shape)) for name, m in activations(model, torch.zeros(1, 1, 28, 28), data.norm_of("mnist"))
    ]
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


@pytest.fixture(scope="module")
def resnet_server(data_dir, tmp_path_factory):
    yield from server_in(data_dir, tmp_path_factory.mktemp("resnet"))


def test_a_resnet18_run_shows_its_stages(resnet_server, data_dir):
    server = resnet_server
    (run_id,) = server.start([{"model": "resnet18", "train_samples": 128, "batch_size": 32, "epochs": 1}])
    assert server.wait(run_id, timeout=180)["status"] == "finished"
    image = read_test_digits(data_dir, 1)[0][0].tolist()  # a grey (28, 28) digit
    answer = server.post(f"/api/runs/{run_id}/activations", json={"image": image})
    assert answer.status_code == 200, answer.text
    maps = answer.json()["layers"]
    shapes = {m["name"]: m["shape"] for m in maps}
    assert shapes == {
        "conv1": [64, 7, 7],
        "layer1": [64, 7, 7],
        "layer2": [128, 4, 4],
        "layer3": [256, 2, 2],
        "layer4": [512, 1, 1],
    }
    assert all(len(m["maps"]) == m["shape"][0] for m in maps)
    bad = server.post(f"/api/runs/{run_id}/activations", json={"image": [[[0.5] * 32] * 32] * 3})
    assert bad.status_code == 400 and bad.json()["field"] == "image" and "grey 28x28" in bad.json()["error"]
    names = [layer["name"] for layer in server.get(f"/api/runs/{run_id}/gradients").json()["layers"]]
    assert names == [f"conv{i}" for i in range(1, 21)] + ["fc"]  # every conv of the stem, blocks and shortcuts
