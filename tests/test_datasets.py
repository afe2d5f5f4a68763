"""The dataset registry on real files: CIFAR-10 from ../shared/data, image folders written here, the cache."""

import pytest
import torch
from torchvision.io import encode_png

from cnn import data, datasets
from cnn.config import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torchvision")  # encode_png
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_png(path, channels, size=(40, 30), value=0):
    """A small PNG of a flat colour plus noise; grey has one stored channel, RGB three."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = (torch.randint(0, 50, (channels, *size)) + value).clamp(0, 255).to(torch.uint8)
    path.write_bytes(encode_png(image).numpy().tobytes())


def make_folder(root, name, rgb=(), test=True, per_class=5):
    """<root>/folders/<name>/{train[,test]}/<class>/*.png for three classes; `rgb` names the classes stored
    in RGB (the others grey)."""
    base = root / "folders" / name
    for label, cls in enumerate(("cat", "dog", "emu")):
        channels = 3 if cls in rgb else 1
        for i in range(per_class):
            write_png(base / "train" / cls / f"{i}.png", channels, value=80 * label)
        if test:
            write_png(base / "test" / cls / "0.png", channels, value=80 * label)
    return base


@pytest.fixture(scope="module")
def cifar_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_cifar10_test_split_from_class_folders(data_dir, cifar_cache):
    images, labels = datasets.load("cifar10", data_dir, train=False, cache_dir=cifar_cache)
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.bincount().tolist() == [1000] * 10
    assert datasets.describe("cifar10", data_dir).classes == CIFAR10


def test_second_load_reads_the_cache(data_dir, cifar_cache):
    first = datasets.load("cifar10", data_dir, train=False, cache_dir=cifar_cache)
    (cache_file,) = cifar_cache.glob("cifar10-test-*.pt")
    written = cache_file.stat().st_mtime_ns
    again = datasets.load("cifar10", data_dir, train=False, cache_dir=cifar_cache)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert cache_file.stat().st_mtime_ns == written and list(cifar_cache.glob("*.pt")) == [cache_file]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_keep_their_loader(name, data_dir, tmp_path):
    images, labels = datasets.load(name, data_dir, train=False, cache_dir=tmp_path)
    old_images, old_labels = data.load(name, data_dir, train=False)
    assert images.shape == (10_000, 1, 28, 28) and torch.equal(images[:, 0], old_images)
    assert torch.equal(labels, old_labels) and not any(tmp_path.iterdir())  # IDX files need no cache


def test_grey_folder_with_test_split(tmp_path):
    make_folder(tmp_path, "pets")
    info = datasets.describe("folder:pets", tmp_path)
    assert (info.classes, info.train, info.test, info.shape) == (["cat", "dog", "emu"], 15, 3, [1, 32, 32])
    images, labels = datasets.load("folder:pets", tmp_path, train=True, cache_dir=tmp_path / "cache")
    assert images.shape == (15, 1, 32, 32) and images.dtype == torch.uint8
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5
    assert labels.tolist() != sorted(labels.tolist())  # mixed: "the first N" of a class-folder set holds every class
    mean, std = datasets.stats("folder:pets", tmp_path, tmp_path / "cache")
    assert len(mean) == len(std) == 1 and 0 < mean[0] < 1 and 0 < std[0] < 1


def test_mixed_folder_without_test_is_rgb_with_a_seeded_split(tmp_path):
    make_folder(tmp_path, "mixed", rgb=("dog",), test=False)
    info = datasets.describe("folder:mixed", tmp_path, size=28)
    assert (info.train, info.test, info.shape) == (12, 3, [3, 28, 28])
    cache = tmp_path / "cache"
    test = datasets.load("folder:mixed", tmp_path, train=False, cache_dir=cache, size=28)
    assert test[0].shape == (3, 3, 28, 28) and sorted(test[1].tolist()) == [0, 1, 2]  # one of five per class
    again = datasets.load("folder:mixed", tmp_path, train=False, cache_dir=tmp_path / "other", size=28)
    assert torch.equal(test[0], again[0])  # decoded afresh, the same split


def test_changed_folder_is_read_again(tmp_path):
    base = make_folder(tmp_path, "pets")
    cache = tmp_path / "cache"
    assert len(datasets.load("folder:pets", tmp_path, train=True, cache_dir=cache)[0]) == 15
    write_png(base / "train" / "emu" / "new.png", 1)
    images, labels = datasets.load("folder:pets", tmp_path, train=True, cache_dir=cache)
    assert len(images) == 16 and labels.bincount().tolist() == [5, 5, 6]
    assert len(list(cache.glob("folder-pets-32-train-*.pt"))) == 1  # the stale file is gone


def test_listing_finds_folder_datasets(tmp_path):
    make_folder(tmp_path, "pets")
    (tmp_path / "folders" / "lonely" / "train" / "one").mkdir(parents=True)  # one class: not a dataset
    names = [info.name for info in datasets.listing(tmp_path)]
    assert names == ["mnist", "fashion_mnist", "cifar10", "folder:pets"]


@pytest.mark.parametrize("name", ["../x", "folder:../../etc", "folder:a/b", "", "folder:", "svhn", None])
def test_bad_names_are_refused(name, tmp_path):
    with pytest.raises(ConfigError) as caught:
        datasets.load(name, tmp_path, train=False, cache_dir=tmp_path / "cache")
    assert caught.value.field == "dataset"


def test_api_lists_datasets(server):
    listed = {d["name"]: d for d in server.get("/api/datasets").json()["datasets"]}
    assert {k: (d["shape"], d["train"], d["test"], d["on_disk"]) for k, d in listed.items()} == {
        "mnist": ([1, 28, 28], 60_000, 10_000, True),
        "fashion_mnist": ([1, 28, 28], 60_000, 10_000, True),
        "cifar10": ([3, 32, 32], 50_000, 10_000, True),
    }
    assert listed["cifar10"]["classes"] == CIFAR10 and listed["mnist"]["classes"] == list("0123456789")
    assert listed["fashion_mnist"]["classes"][-1] == "Ankle boot"


def test_a_folder_of_two_images_a_class_still_has_a_test_split(tmp_path):
    make_folder(tmp_path, "pairs", test=False, per_class=2)
    info = datasets.describe("folder:pairs", tmp_path)
    assert (info.train, info.test) == (3, 3)  # one of each class's two goes to the test split
