"""The dataset registry: each dataset is a name, its class names, shape, counts and per-channel mean/std,
and a loader that returns uint8 images (N, C, H, W) with int64 labels.

mnist and fashion_mnist come through cnn.data as before; cifar10 and `folder:<name>` image folders are
decoded once with torchvision.io and cached as plain tensors in a folder the caller names (never the data
folder), keyed by the files' paths, sizes and mtimes so that a changed folder is read again.
"""

import hashlib
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2.functional import resize

from . import data
from .config import DATASET_RULE, DATASETS, DEFAULT_SIDE, FOLDER_NAME, MAX_SIDE, MIN_SIDE, ConfigError, rule
from .data import DataError, Norm

DIGITS = tuple("0123456789")
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
NAME_RULE = DATASET_RULE
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_CLASSES, MAX_CLASSES = 2, 100
TEST_FRACTION, SPLIT_SEED = 0.2, 0  # a folder with no test/ gives this share of each class to the test split
CACHE_VERSION = 3  # bump when the decoding changes, so old cache files are not trusted
ORDER_SEED = 0  # class folders are read class by class; a fixed shuffle mixes them, so "the first N" is fair


@dataclass(frozen=True)
class Info:
    """What a listing shows; cheap to compute (files are counted, never decoded)."""

    name: str
    classes: list[str]
    train: int
    test: int
    shape: list[int]  # [channels, height, width]
    on_disk: bool
    counts: list[int] | None = None  # training images per class, where counting them reads no image

    def to_dict(self):
        return asdict(self)


def check_name(name):
    """A dataset name, or ConfigError naming `dataset`: names are never paths. Built-in names in any case."""
    if isinstance(name, str) and name.lower() in BUILTIN:
        return name.lower()
    if isinstance(name, str) and FOLDER_NAME.fullmatch(name):
        return name
    raise ConfigError("dataset", NAME_RULE)


def source(name, size=None):
    """A dataset's source; `size` (a config's image_size) is the side a folder's images are resized to, None
    for DEFAULT_SIDE. A built-in dataset keeps its own side (the config refuses another)."""
    name = check_name(name)
    if name in BUILTIN:
        return BUILTIN[name]
    size = DEFAULT_SIDE if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIDE <= size <= MAX_SIDE:
        raise ConfigError("image_size", rule("image_size"))
    return Folder(FOLDER_NAME.fullmatch(name).group(1), size)


def describe(name, data_dir, size=None):
    """-> Info of one dataset."""
    return source(name, size).info(Path(data_dir))


def load(name, data_dir, train, cache_dir=None, size=None):
    """-> (images uint8 (N, C, H, W), labels int64 (N,)); cache_dir None: default_cache_dir()."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    images, labels, _, _ = source(name, size).load(Path(data_dir), train, cache_dir)
    return images, labels


def labels(name, data_dir, train, cache_dir=None):
    """-> labels int64 (N,), in the order load() gives them; a folder's read from its file names without
    decoding an image (they are the same at every side)."""
    src = source(name)
    if isinstance(src, Folder):
        return src.labels(Path(data_dir), train)
    return load(name, data_dir, train, cache_dir)[1]


@dataclass
class Loaded:
    """Both splits of a dataset on the CPU, with what a model needs to know of it."""

    name: str
    classes: list
    shape: list  # [channels, height, width]
    norm: Norm
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def meta(self):
        """What a checkpoint carries so that anything can rebuild and feed its model."""
        return {"dataset": self.name, "classes": list(self.classes), "shape": list(self.shape), **self.norm.to_dict()}


def default_cache_dir():
    """Where decoded images go when no runs folder is named: never inside the data folder."""
    return Path(os.environ.get("CNN_CACHE_DIR") or Path.home() / ".cache" / "cnn-playground")


def open_dataset(name, data_dir, cache_dir=None, size=None):
    """-> Loaded: both splits, class names, shape and Norm (cached decoding: a second open is fast)."""
    src, data_dir = source(name, size), Path(data_dir)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    train_x, train_y, mean, std = src.load(data_dir, True, cache_dir)
    test_x, test_y, _, _ = src.load(data_dir, False, cache_dir)
    classes = src.class_names(data_dir)
    return Loaded(name, list(classes), list(train_x.shape[1:]), Norm(mean, std), train_x, train_y, test_x, test_y)


def stats(name, data_dir, cache_dir, size=None):
    """-> (mean, std): per-channel lists of the training pixels scaled to [0, 1]."""
    _, _, mean, std = source(name, size).load(Path(data_dir), True, Path(cache_dir))
    return mean, std


def listing(data_dir):
    """-> [Info] for the built-in datasets and every valid folder dataset under <data_dir>/folders."""
    data_dir = Path(data_dir)
    found = [s.info(data_dir) for s in BUILTIN.values()]
    root = data_dir / "folders"
    for entry in sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else ():
        if entry.is_dir() and FOLDER_NAME.fullmatch("folder:" + entry.name):
            try:
                found.append(Folder(entry.name, DEFAULT_SIDE).info(data_dir))
            except (DataError, OSError):  # not a usable dataset (one class, no images...): loading it says why
                pass
    return found


# ---- the sources ----


class Idx:
    """MNIST and Fashion-MNIST: torchvision's IDX files through cnn.data, with their known statistics."""

    def __init__(self, name, classes):
        self.name, self.classes = name, classes
        _, self.folder, mean, std = data.SOURCES[name]
        self.mean, self.std = [mean], [std]

    def class_names(self, data_dir):
        return self.classes

    def info(self, data_dir):
        on_disk = data.on_disk(data_dir, self.folder)
        counts = None
        if on_disk:  # the label file is 60 KB: counting classes reads no image
            from torchvision.datasets.mnist import read_label_file

            labels = read_label_file(str(data_dir / self.folder / "raw" / "train-labels-idx1-ubyte"))
            counts = torch.bincount(labels, minlength=len(self.classes)).tolist()
        return Info(self.name, list(self.classes), DATASETS[self.name], 10_000, [1, 28, 28], on_disk, counts)

    def load(self, data_dir, train, cache_dir):
        images, labels = data.load(self.name, data_dir, train)
        return images.unsqueeze(1), labels, self.mean, self.std  # (N, 1, 28, 28)


class Cifar10:
    """Class folders <data_dir>/CIFAR10/{train,test}/<class>/*.png, else torchvision's
    <data_dir>/cifar-10-batches-py, else a torchvision download into the data folder."""

    name, shape = "cifar10", [3, 32, 32]
    listed = None  # ((root, class folders' mtimes), files) of the last listing

    def class_names(self, data_dir):
        return CIFAR10

    def info(self, data_dir):
        found = self.folders(data_dir)
        if found:
            counts = [sum(1 for _, label in found[0] if label == i) for i in range(len(CIFAR10))]
            return Info(self.name, list(CIFAR10), len(found[0]), len(found[1]), self.shape, True, counts)
        return Info(self.name, list(CIFAR10), 50_000, 10_000, self.shape, self.batches_on_disk(data_dir))

    def batches_on_disk(self, data_dir):
        return all((data_dir / "cifar-10-batches-py" / f).exists() for f in CIFAR_BATCHES)

    def folders(self, data_dir):
        """-> (train files, test files) when both class folders hold the ten classes, else None."""
        root = data_dir / "CIFAR10"
        if not all((root / split).is_dir() for split in ("train", "test")):
            return None
        # 60,000 files take a second to list: kept while no class folder changed (a file added, removed
        # or renamed changes its folder's mtime; a file rewritten in place still changes the cache's key)
        stamp = tuple(e.stat().st_mtime_ns for split in ("train", "test") for e in os.scandir(root / split))
        if self.listed and self.listed[0] == (root, stamp):
            return self.listed[1]
        self.listed = ((root, stamp), self.scan(root))
        return self.listed[1]

    def scan(self, root):
        splits = [image_files(root / split) for split in ("train", "test")]
        if any(sorted(classes) != list(CIFAR10) for classes in splits):
            return None
        return tuple(labelled(classes, CIFAR10) for classes in splits)

    def load(self, data_dir, train, cache_dir):
        split = "train" if train else "test"
        found = self.folders(data_dir)
        if found:
            files = found[0 if train else 1]
            build = lambda: decode(files, ImageReadMode.RGB, 32)  # noqa: E731
            return cached(cache_dir, data_dir, f"cifar10-{split}", files, train, build)
        batches = data_dir / "cifar-10-batches-py"
        if not self.batches_on_disk(data_dir):
            try:
                with data.download_lock(data_dir, "cifar-10-batches-py"):
                    _torchvision_cifar(data_dir, train, download=True)
            except Exception as exc:  # torchvision raises several kinds when offline
                raise DataError(
                    f"Could not load cifar10 from {data_dir.resolve() / 'CIFAR10'} or {batches.resolve()} and "
                    f"could not download it ({exc}). If you are offline, put the PNGs in "
                    f"{data_dir.resolve() / 'CIFAR10'}/{{train,test}}/<class>/ (one folder per class: "
                    f"{', '.join(CIFAR10)}), or torchvision's cifar-10-batches-py folder in {data_dir.resolve()}."
                ) from None
        files = [(batches / f, i) for i, f in enumerate(CIFAR_BATCHES)]
        return cached(cache_dir, data_dir, f"cifar10-{split}", files, train, lambda: _from_batches(data_dir, train))


def _torchvision_cifar(data_dir, train, download):
    from torchvision.datasets import CIFAR10 as TorchvisionCifar

    return TorchvisionCifar(root=str(data_dir), train=train, download=download)


def _from_batches(data_dir, train):
    ds = _torchvision_cifar(data_dir, train, download=False)
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)  # (N, 3, 32, 32)


class Folder:
    """A user's <data_dir>/folders/<name>/{train,test}/<class>/*.png|jpg|jpeg, resized to size x size, grey
    when every image is grey, else RGB. Without test/, a seeded share of each class is the test split."""

    def __init__(self, name, size):
        self.name, self.size = name, size

    def splits(self, data_dir):
        """-> (classes, train files, test files); files are [(path, label)]."""
        root = data_dir / "folders" / self.name
        if not (root / "train").is_dir():
            raise DataError(f"No dataset folder:{self.name}: put its images in {root.resolve()}/train/<class>/.")
        found = image_files(root / "train")
        classes = sorted(found)
        if not MIN_CLASSES <= len(classes) <= MAX_CLASSES:
            raise DataError(
                f"{root.resolve() / 'train'} has {len(classes)} class folders with images; "
                f"a dataset needs {MIN_CLASSES} to {MAX_CLASSES}."
            )
        if (root / "test").is_dir():
            tested = image_files(root / "test")
            unknown = sorted(set(tested) - set(classes))
            if unknown:
                raise DataError(f"{root.resolve() / 'test'} has classes not in train/: {', '.join(unknown)}.")
            if not tested:
                raise DataError(f"{root.resolve() / 'test'} holds no image; fill it or remove it for a seeded split.")
            return classes, labelled(found, classes), labelled(tested, classes)
        train, test = [], []
        generator = torch.Generator().manual_seed(SPLIT_SEED)
        for label, cls in enumerate(classes):
            files = found[cls]
            # every class with two images or more gives the test split one at least
            n_test = max(1, round(len(files) * TEST_FRACTION)) if len(files) > 1 else 0
            order = torch.randperm(len(files), generator=generator).tolist()
            test += [(files[i], label) for i in sorted(order[:n_test])]
            train += [(files[i], label) for i in sorted(order[n_test:])]
        if not test:
            raise DataError(
                f"{root.resolve()} gives no test image: add a test/ folder, or two images or more per class."
            )
        return classes, train, test

    def class_names(self, data_dir):
        return self.splits(data_dir)[0]

    def info(self, data_dir):
        classes, train, test = self.splits(data_dir)
        channels = 1 if all(is_grey(path) for path, _ in train + test) else 3
        counts = [sum(1 for _, label in train if label == i) for i in range(len(classes))]
        shape = [channels, self.size, self.size]
        return Info(f"folder:{self.name}", classes, len(train), len(test), shape, True, counts)

    def labels(self, data_dir, train):
        _, train_files, test_files = self.splits(data_dir)
        files = train_files if train else test_files
        return torch.tensor([label for _, label in files], dtype=torch.int64)[kept_order(len(files))]

    def load(self, data_dir, train, cache_dir):
        classes, train_files, test_files = self.splits(data_dir)
        every = train_files + test_files  # the split and the colour mode depend on every file
        grey = all(is_grey(path) for path, _ in every)
        files = train_files if train else test_files
        key = ["folder", self.name, "train" if train else "test", self.size, grey, classes, *every]
        mode = ImageReadMode.GRAY if grey else ImageReadMode.RGB
        label = f"folder-{self.name}-{self.size}-{'train' if train else 'test'}"
        return cached(cache_dir, data_dir, label, key, train, lambda: decode(files, mode, self.size))


BUILTIN = {"mnist": Idx("mnist", DIGITS), "fashion_mnist": Idx("fashion_mnist", FASHION), "cifar10": Cifar10()}


# ---- files, decoding and the cache ----


def image_files(root):
    """-> {class folder name: sorted image paths} for the class folders under root that hold images."""
    found = {}
    for entry in os.scandir(root):
        if entry.is_dir() and not entry.name.startswith("."):
            names = sorted(
                f.name
                for f in os.scandir(entry.path)
                if f.name.lower().endswith(IMAGE_SUFFIXES) and not f.name.startswith(".") and f.is_file()
            )
            paths = [os.path.join(entry.path, name) for name in names]  # strings: 60,000 Paths cost 0.5 s
            if paths:
                found[entry.name] = paths
    return found


def labelled(found, classes):
    return [(path, label) for label, cls in enumerate(classes) for path in found.get(cls, ())]


def is_grey(path):
    """True when the file stores one grey channel (PNG colour types 0 and 4, one-component JPEG), read from
    its header only."""
    with open(path, "rb") as f:
        head = f.read(32)  # a PNG says it in its first 26 bytes; a JPEG may need its first segments
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            return len(head) > 25 and head[25] in (0, 4)
        head += f.read(65_536)
    i = 2  # JPEG: walk the segments to the frame header (SOFn), whose byte 9 counts the components
    while i + 9 < len(head) and head[i] == 0xFF:
        marker = head[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            return head[i + 9] == 1
        i += 2 + int.from_bytes(head[i + 2 : i + 4], "big")
    return False  # unknown: decoding it as RGB is always safe


def decode(files, mode, size):
    """[(path, label)] -> (uint8 (N, C, size, size), int64 (N,)) in a fixed shuffled order; a broken file is a
    DataError naming it."""
    images = torch.empty(len(files), 1 if mode == ImageReadMode.GRAY else 3, size, size, dtype=torch.uint8)
    with warnings.catch_warnings():  # torchvision 0.29 warns on every call that torchcodec will take over
        warnings.simplefilter("ignore", DeprecationWarning)
        for i, (path, _) in enumerate(files):
            try:
                image = as_uint8(decode_image(read_file(os.fspath(path)), mode=mode))
            except (RuntimeError, ValueError) as exc:
                raise DataError(f"Could not decode {path}: {exc}") from None
            if image.shape[1:] != (size, size):
                image = resize(image, [size, size], antialias=True)  # the whole image, squeezed to a square
            images[i] = image
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    order = kept_order(len(files))
    return images[order], labels[order]


def kept_order(n):
    """The fixed shuffle a folder's n decoded images are kept in (its files are listed class by class)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(ORDER_SEED))


def as_uint8(image):
    """A 16-bit PNG decodes to uint16: scaled to 0..255, not cut to its low byte."""
    if image.dtype == torch.uint8:
        return image
    from torchvision.transforms.v2.functional import to_dtype

    return to_dtype(image, torch.uint8, scale=True)


def fingerprint(items, root):
    """A hash of the key's parts; a (path, label) counts with the path relative to root, the file's size and
    mtime, so a changed, added or removed file changes it, and moving the data folder does not."""
    h = hashlib.sha256(str(CACHE_VERSION).encode())
    root = os.fspath(root) + os.sep
    for item in items:
        if isinstance(item, tuple):
            path, label = os.fspath(item[0]), item[1]
            st = os.stat(path)
            item = f"{path.removeprefix(root)}|{label}|{st.st_size}|{st.st_mtime_ns}"
        h.update(repr(item).encode() + b"\n")
    return h.hexdigest()[:16]


def channel_stats(images):
    """uint8 (N, C, H, W) -> per-channel mean and std of the pixels scaled to [0, 1], in float64 sums."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255)
        total += x.sum((0, 2, 3))
        squares += x.square_().sum((0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / max(count, 1)
    std = (squares / max(count, 1) - mean.square()).clamp_min(0).sqrt()
    return mean.tolist(), std.tolist()


def cached(cache_dir, root, label, key, train, build):
    """-> (images, labels, mean, std) from <cache_dir>/<label>-<hash of key>.pt, or built, saved there (plain
    tensors, read back with weights_only=True) and older files of the same label removed. mean/std are those
    of this split's images for the training split, None for the test split."""
    path = cache_dir / f"{label}-{fingerprint(key, root)}.pt"
    found = read_cache(path)
    if found:
        return found
    cache_dir.mkdir(parents=True, exist_ok=True)
    with data.exclusive(cache_dir / f"{label}.lock"):  # two workers starting at once: one decodes, the other waits
        return read_cache(path) or build_cache(cache_dir, path, label, train, build)


def read_cache(path):
    if not path.exists():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        return saved["images"], saved["labels"], saved["mean"], saved["std"]
    except Exception:  # a torn or foreign file: decode again and overwrite it
        return None


def build_cache(cache_dir, path, label, train, build):
    images, labels = build()
    mean, std = channel_stats(images) if train else (None, None)
    partial = path.with_suffix(f".{os.getpid()}.part")
    torch.save({"images": images, "labels": labels, "mean": mean, "std": std}, partial)
    os.replace(partial, path)  # atomic: a reader never sees half a file
    for old in cache_dir.glob(f"{label}-*.pt"):
        if old != path and re.fullmatch(re.escape(label) + r"-[0-9a-f]{16}\.pt", old.name):
            old.unlink(missing_ok=True)
    return images, labels, mean, std
