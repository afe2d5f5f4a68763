"""Data sets through torchvision, held as uint8 tensors; batches made on the fly.

A batch is a shuffled index slice of the uint8 images, turned to float and
normalised in one vectorised step: no per-sample PIL transform in the hot loop.
"""

import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision import datasets

# name -> (torchvision class, folder under the data dir, mean, std of the training pixels)
SOURCES = {
    "mnist": (datasets.MNIST, "MNIST", 0.1307, 0.3081),
    "fashion_mnist": (datasets.FashionMNIST, "FashionMNIST", 0.2860, 0.3530),
}
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataError(RuntimeError):
    """The data set is neither on disk nor downloadable; the message says where to put it."""


def load(name, data_dir, train):
    """-> (images uint8 (N, 28, 28), labels int64 (N,)), downloading if online."""
    cls, folder, _, _ = SOURCES[name]
    try:
        with download_lock(data_dir, folder):  # two workers starting at once must not download into one folder
            ds = cls(root=str(data_dir), train=train, download=True)
    except Exception as exc:  # torchvision raises several kinds when offline
        raw = Path(data_dir).resolve() / folder / "raw"
        raise DataError(
            f"Could not load {name} from {raw} and could not download it ({exc}). "
            f"If you are offline, put the four files {', '.join(RAW_FILES)} "
            f"(or their .gz versions) in {raw}."
        ) from None
    return ds.data, ds.targets.long()


def on_disk(data_dir, folder):
    """True when all four files lie unpacked in <data_dir>/<folder>/raw: nothing to download or write."""
    return all((Path(data_dir) / folder / "raw" / name).exists() for name in RAW_FILES)


@contextmanager
def download_lock(data_dir, folder):
    """An exclusive lock on the data folder while a download is due (a complete folder is only read)."""
    if on_disk(data_dir, folder):
        yield
        return
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    except OSError:  # a folder we cannot write: torchvision will say
        pass
    with exclusive(Path(data_dir) / ".download.lock"):
        yield


@contextmanager
def exclusive(lock_path):
    """Holds an exclusive lock on lock_path (made if missing) for the block; where locks cannot be had
    (no flock on Windows, a read-only folder) the block runs unlocked."""
    try:
        import fcntl

        handle = open(lock_path, "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        while True:  # polling, not a blocking flock: under eventlet that would stop every green thread
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.2)
        yield


class Norm:
    """A dataset's per-channel mean and std of pixels scaled to [0, 1], applied to pixels 0..255."""

    def __init__(self, mean, std):
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.on = {}  # device -> (scale, shift) tensors (C, 1, 1), made once

    def factors(self, device):
        if device not in self.on:
            # a channel of one constant value has no spread: its pixels normalise to 0, not to NaN
            mean, std = torch.tensor(self.mean), torch.tensor(self.std).clamp_min(1e-6)
            scale, shift = (1 / (255 * std)).view(-1, 1, 1), (mean / std).view(-1, 1, 1)
            self.on[device] = (scale.to(device), shift.to(device))
        return self.on[device]

    def to_dict(self):
        return {"mean": self.mean, "std": self.std}


def norm_of(name):
    """The known Norm of MNIST and Fashion-MNIST (other datasets measure theirs: cnn.datasets.stats)."""
    _, _, mean, std = SOURCES[name]
    return Norm([mean], [std])


def normalise(images, norm):
    """Pixels 0..255, uint8 or float (B, C, H, W) on any device -> a new float tensor normalised with the
    dataset's Norm; the input is left as it was."""
    x = images.to(torch.float32, copy=True)  # a copy even of a float input: the ops below are in place
    scale, shift = norm.factors(x.device)
    return x.mul_(scale).sub_(shift)


def batches(images, labels, batch_size, generator=None):
    """Yield (uint8 images, labels) of shuffled batches covering the set once."""
    order = torch.randperm(len(images), generator=generator).to(images.device)
    for start in range(0, len(images), batch_size):
        idx = order[start : start + batch_size]
        yield images[idx], labels[idx]
