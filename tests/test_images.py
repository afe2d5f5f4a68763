"""Image datasets end to end through the real server: CIFAR-10 with augmentation, an image folder the test
writes, upload-to-predict, and the 4xx every bad layer stack or upload gets."""

import base64
import io

import numpy as np
import pytest
import torch
from conftest import server_in
from torchvision.io import encode_jpeg, encode_png

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torchvision")
SMALL = {"channels": [8, 16], "train_samples": 1024, "batch_size": 64, "lr": 3e-3}


def png(image):
    return encode_png(image).numpy().tobytes()


def b64(raw):
    return base64.b64encode(raw).decode()


def write_folder(root, name, channels, per_class=12):
    """Three classes told apart by brightness (grey) or by colour (RGB), with noise; no test/: a seeded split."""
    generator = torch.Generator().manual_seed(1)
    for label, cls in enumerate(("low", "mid", "high")):
        for i in range(per_class):
            image = torch.randint(0, 40, (channels, 36, 36), generator=generator)
            if channels == 1:
                image += 100 * label
            else:
                image[label] += 200
            path = root / "folders" / name / "train" / cls / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png(image.clamp(0, 255).to(torch.uint8)))


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    """A server of its own: the layer-stack pair made here must not become the pair the page tests open on."""
    yield from server_in(data_dir, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def cifar(server):
    """A finished CIFAR-10 pair trained with crop and flip: the lab network's layers against a shorthand."""
    lab = server.get("/api/schema").json()["presets"]["lab"]["values"]
    common = {**SMALL, "dataset": "cifar10", "epochs": 2, "augment": {"crop": 4, "flip": True}}
    ids = server.start([{**common, **lab}, common])
    runs = [server.wait(run_id, timeout=300) for run_id in ids]
    assert [r["status"] for r in runs] == ["finished", "finished"], runs
    return ids, runs


def test_a_cifar10_run_with_augmentation_lowers_the_loss(cifar):
    _, runs = cifar
    for run in runs:
        assert run["info"]["shape"] == [3, 32, 32] and run["info"]["classes"][0] == "airplane"
        epochs = run["metrics"]["epoch"]
        assert epochs[-1]["train_loss"] < min(epochs[0]["train_loss"], 2.3)  # falling, below chance's log(10)
        assert epochs[-1]["test_acc"] > 0.15


def test_a_cifar10_png_uploaded_is_classified_by_both(server, cifar, data_dir):
    ids, _ = cifar
    raw = (data_dir / "CIFAR10" / "test" / "cat").iterdir().__next__().read_bytes()
    answer = server.post("/api/predict", json={"file": b64(raw), "runs": ids})
    assert answer.status_code == 200, answer.text
    for prediction in answer.json()["predictions"]:
        assert len(prediction["probs"]) == 10 and sum(prediction["probs"]) == pytest.approx(1, abs=1e-4)
    # a big JPEG of another size and a data: URL are resized to 32x32 and read the same way
    photo = encode_jpeg(torch.randint(0, 255, (3, 300, 200), dtype=torch.uint8)).numpy().tobytes()
    url = "data:image/jpeg;base64," + b64(photo)
    assert server.post("/api/predict", json={"file": url, "runs": ids}).status_code == 200


@pytest.mark.parametrize("channels", [1, 3])
def test_an_image_folder_trains_and_predicts(data_dir, tmp_path, channels):
    write_folder(tmp_path / "data", "shades", channels)
    for api in server_in(tmp_path / "data", tmp_path):
        listing = {d["name"]: d for d in api.get("/api/datasets").json()["datasets"]}
        shades = listing["folder:shades"]
        assert shades["classes"] == ["high", "low", "mid"] and shades["shape"] == [channels, 32, 32]
        assert shades["train"] + shades["test"] == 36 and shades["counts"] == [shades["train"] // 3] * 3
        cfg = {"dataset": "folder:shades", "channels": [4], "epochs": 8, "batch_size": 8, "lr": 1e-2}
        (run_id,) = api.start([cfg])
        run = api.wait(run_id, timeout=180)
        assert run["status"] == "finished" and run["info"]["classes"] == ["high", "low", "mid"]
        image = torch.randint(0, 40, (channels, 50, 50))
        image[-1 if channels == 3 else 0] += 200  # "high": the brightest, or the blue one
        answer = api.post(
            "/api/predict", json={"file": b64(png(image.clamp(0, 255).to(torch.uint8))), "runs": [run_id]}
        )
        assert answer.status_code == 200, answer.text
        (prediction,) = answer.json()["predictions"]
        assert len(prediction["probs"]) == 3 and prediction["label"] == 0  # "high"
        assert run["metrics"]["epoch"][-1]["test_acc"] >= 0.6


def test_a_16_bit_png_is_scaled_not_cut():
    from PIL import Image

    from cnn.infer import parse_file

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 0x8000, dtype=np.uint16)).save(buffer, format="PNG")  # mid-grey in 16 bits
    pixels = parse_file(b64(buffer.getvalue()), [1, 8, 8])
    assert pixels.shape == (1, 8, 8) and pixels.mean().item() == pytest.approx(0.5, abs=0.01)


def truncated_png():
    raw = png(torch.zeros(3, 32, 32, dtype=torch.uint8) + 90)
    return raw[: len(raw) // 2]


BAD_UPLOADS = [
    ({"file": ""}, "base64"),
    ({"file": 42}, "base64"),
    ({"file": ["AAAA"]}, "base64"),
    ({"file": "not base64 !!"}, "not base64"),
    ({"file": b64(b"")}, "base64"),
    ({"file": b64(b"hello, I am text")}, "not a PNG or JPEG"),
    ({"file": b64(b"GIF89a" + bytes(100))}, "not a PNG or JPEG"),
    ({"file": b64(truncated_png())}, "truncated or damaged"),
    ({"file": b64(b"\x89PNG\r\n\x1a\n")}, "truncated or damaged"),  # a signature and nothing else
    ({"file": b64(b"\xff\xd8\xff" + bytes(40))}, "truncated or damaged"),  # a JPEG start with no image
    ({"file": "A" * (7 * 1024 * 1024)}, "over 5 MB"),
    ({"file": "data:image/png;base64,@@@"}, "not base64"),
    ({"file": b64(png(torch.zeros(3, 8, 8, dtype=torch.uint8))), "image": [[0]]}, "exactly one of"),
    ({}, "exactly one of"),
    ({"file": b64(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (100_000).to_bytes(4, "big") * 2 + bytes(20))}, "pixels"),
    ({"file": b64(png(torch.zeros(3, 8, 8, dtype=torch.uint8))), "images": []}, "exactly one of"),
]


@pytest.mark.parametrize("body, said", BAD_UPLOADS, ids=[str(i) for i in range(len(BAD_UPLOADS))])
def test_a_bad_upload_gets_a_sentence_and_the_server_goes_on(server, cifar, body, said):
    ids, _ = cifar
    answer = server.post("/api/predict", json={**body, "runs": ids})
    assert answer.status_code == 400, answer.text
    assert said in answer.json()["error"] and answer.json()["field"] in ("file", "image")
    assert server.get("/api/runs").status_code == 200


CONV, POOL = {"type": "conv", "out": 4}, {"type": "maxpool"}
BAD_STACKS = [
    ([{"type": "conv"}], "layers[0]", "needs out"),
    ([{"type": "conv", "out": 0}], "layers[0]", "from 1 to 1024"),
    ([{"type": "conv", "out": 4, "kernel": 9}], "layers[0]", "kernel must be"),
    ([{"type": "conv", "out": 4, "stride": 3}], "layers[0]", "stride must be 1 or 2"),
    ([{"type": "conv", "out": 4, "padding": "full"}], "layers[0]", "padding must be"),
    ([CONV, {"type": "maxpool", "size": 0}], "layers[1]", "size must be"),
    ([CONV, {"type": "dropout", "p": 1}], "layers[1]", "p must be"),
    ([CONV, {"type": "linear"}], "layers[1]", "needs out"),
    ([CONV, {"type": "relu", "inplace": True}], "layers[1]", "takes no fields"),
    ([CONV, {"type": "softmax"}], "layers[1]", "type must be one of"),
    ([CONV, "relu"], "layers[1]", "an object with a type"),
    ([CONV, {"out": 3}], "layers[1]", "type must be one of"),
    ([CONV, POOL, POOL, POOL, POOL, POOL, POOL], "layers[6]", "does not fit"),
    ([{"type": "conv", "out": 4, "kernel": 7, "padding": "valid"}] * 6, "layers[5]", "smaller than 1x1"),
    ([CONV, {"type": "flatten"}, POOL], "layers[2]", "flattened"),
    ([CONV, {"type": "batchnorm"}], "layers[1]", "batch_size is 1"),
    ([{"type": "linear", "out": 4096}] * 4, "layers[1]", "at most 50,000,000"),
    ([{"type": "conv", "out": True}], "layers[0]", "true or false"),
]


@pytest.mark.parametrize("layers, field, said", BAD_STACKS, ids=[str(i) for i in range(len(BAD_STACKS))])
def test_a_bad_layer_stack_is_refused_naming_the_layer(server, layers, field, said):
    extra = {"batch_size": 1} if "batch_size is 1" in said else {}
    config = {"layers": layers, "dataset": "cifar10", **extra}
    checked = server.post("/api/models/check", json={"config": config})
    assert checked.status_code == 400 and checked.json()["field"] == field and said in checked.json()["error"]
    started = server.post("/api/runs", json={"models": [config]})
    assert started.status_code == 400 and started.json()["field"] == f"models[0].{field}", started.text
    assert said in started.json()["error"]


def test_the_check_answers_each_layer_and_the_schedule(server):
    lab = server.get("/api/schema").json()["presets"]["lab"]["values"]
    answer = server.post("/api/models/check", json={"config": {**lab, "dataset": "cifar10", "schedule": "onecycle"}})
    got = answer.json()
    assert (got["params"], got["macs"]) == (1_070_794, 6_654_464)
    assert [r["output_shape"] for r in got["layers"]][:3] == [[32, 32, 32], [32, 32, 32], [32, 16, 16]]
    assert got["layers"][-1] == {
        "name": "fc",
        "type": "linear",
        "output_shape": [10],
        "params": 2570,
        "macs": 2560,
        "index": None,
    }
    rates = [lr for _, lr in got["lr_plan"]]
    assert rates[0] < max(rates) == pytest.approx(1e-3) and rates[-1] < rates[0]  # one cycle: up, then down


def test_the_augmentation_preview_shows_changed_copies(server):
    answer = server.post("/api/augment/preview", json={"dataset": "cifar10", "augment": {"crop": 4, "flip": True}})
    got = answer.json()
    original, changed = torch.tensor(got["original"]), torch.tensor(got["augmented"])
    assert original.shape == changed.shape == (16, 3, 32, 32) and not torch.equal(original, changed)
    bad = server.post("/api/augment/preview", json={"dataset": "cifar10", "augment": {"crop": 20}})
    assert bad.status_code == 400 and bad.json()["field"] == "augment"


def test_datasets_list_what_is_on_disk(server):
    listing = {d["name"]: d for d in server.get("/api/datasets").json()["datasets"]}
    assert listing["cifar10"]["shape"] == [3, 32, 32] and listing["cifar10"]["counts"] == [5000] * 10
    assert listing["mnist"]["on_disk"] and listing["mnist"]["train"] == 60_000
    assert set(listing["cifar10"]) == {"name", "classes", "train", "test", "shape", "on_disk", "counts"}
