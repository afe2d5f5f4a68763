"""Inference, once: input preparation and a batched forward pass.

Training, evaluation, analysis, prediction and activations all prepare images here and run the
model through logits(). The Predictor keeps the models the server answers with, rebuilt from the
run's snapshot file (loaded with weights_only=True: no pickled code) whenever the worker replaced it.
"""

import math
import warnings
from collections import OrderedDict
from contextlib import nullcontext

import torch
from torch import nn

from . import data
from .config import ConfigError
from .models import build_model, conv_layers

BATCH = 1000  # images per forward pass when a whole set is classified
MAX_IMAGES = 64  # per predict request
MAX_SIDE = 64  # the largest dataset side an image may be sent at
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
CACHED_MODELS = 8


class NoWeights(LookupError):
    """The run has not written a weight snapshot yet."""


def prepare(images, norm, device=None):
    """Pixels 0..255 (uint8 or float) (B, C, H, W) -> normalised float (B, C, H, W) on `device`."""
    x = data.normalise(images.to(device) if device is not None else images, norm)
    # channels_last lets oneDNN pick its fastest conv kernels on the CPU
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def logits(model, images, norm, autocast=nullcontext, batch=BATCH):
    """Yields (start, float logits (b, classes)) for consecutive batches of `images` (pixels 0..255)."""
    device = next(model.parameters()).device
    with torch.no_grad(), autocast():
        for start in range(0, len(images), batch):
            yield start, model(prepare(images[start : start + batch], norm, device)).float()


def probabilities(model, images, norm, autocast=nullcontext):
    """-> class probabilities (B, classes) on the CPU."""
    return torch.cat([torch.softmax(out, dim=1).cpu() for _, out in logits(model, images, norm, autocast)])


def predict(model, images, norm, autocast=nullcontext):
    """-> (predicted class, its probability) for every image, on the CPU."""
    conf, pred = probabilities(model, images, norm, autocast).max(1)
    return pred, conf


ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid)


def activations(model, images, norm):
    """One image (1, C, H, W), pixels 0..255 -> [(name, map (C, H, W))]: each conv's output at its own
    resolution, through the batch norm and activation that follow it; ResNet18's stem and its four stages."""
    x = prepare(images, norm, next(model.parameters()).device)
    maps = []
    with torch.no_grad():
        if not isinstance(model, nn.Sequential):  # torchvision's ResNet
            x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            maps.append(("conv1", x[0]))
            for stage in ("layer1", "layer2", "layer3", "layer4"):
                x = getattr(model, stage)(x)
                maps.append((stage, x[0]))
            return [(name, m.float().contiguous().cpu()) for name, m in maps]
        modules, names = list(model), {id(m): n for n, m in conv_layers(model)}
        for i, module in enumerate(modules):
            x = module(x)
            if id(module) in names:
                maps.append((names[id(module)], after_conv(x[:1].clone(), modules[i + 1 :])[0]))
    return [(name, m.float().contiguous().cpu()) for name, m in maps]


def after_conv(y, rest):
    """A conv's output (1, C, H, W) through the batch norm and the activation that follow it before the next
    conv or linear. Pools and dropout in between are skipped: an activation after a max-pool, or after the
    flatten (where the classic model moves its last ReLU), is the same function at the conv's resolution.
    `y` is a copy, so an in-place activation changes nothing the model still uses."""
    for module in rest:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            break
        if isinstance(module, nn.BatchNorm2d):
            y = module(y)
        elif isinstance(module, ACTIVATIONS):
            return module(y)
    return y


def parse_image(value, name="image"):
    """Untrusted JSON -> float tensor (C, H, W) of pixels in [0, 1], or ConfigError naming the field. A grey
    image may come as H rows of W numbers; an image with channels as C lists of H rows."""
    rule = (
        f"must be rows of numbers from 0 to 1 (a grey image, at most {MAX_SIDE}x{MAX_SIDE}: white digit on black, "
        "as in MNIST), or a list of 3 such channels (an RGB image)"
    )
    if not isinstance(value, list) or not value:
        raise ConfigError(name, rule)
    planes = value if isinstance(value[0], list) and value[0] and isinstance(value[0][0], list) else [value]
    if len(planes) not in (1, 3):
        raise ConfigError(name, rule)
    height = len(planes[0])
    width = len(planes[0][0]) if height and isinstance(planes[0][0], list) else 0
    if not 1 <= height <= MAX_SIDE or not 1 <= width <= MAX_SIDE:
        raise ConfigError(name, rule)
    for plane in planes:
        if not isinstance(plane, list) or len(plane) != height:
            raise ConfigError(name, rule)
        for row in plane:
            if not isinstance(row, list) or len(row) != width:
                raise ConfigError(name, rule)
            for v in row:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 or math.isnan(v):
                    raise ConfigError(name, rule)
    return torch.tensor(planes, dtype=torch.float32)


def parse_images(value):
    """Untrusted JSON list of images -> float tensor (N, C, H, W) in [0, 1], 1 <= N <= MAX_IMAGES."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IMAGES:
        raise ConfigError("images", f"must be a list of 1 to {MAX_IMAGES} images of the same size")
    images = [parse_image(image, f"images[{i}]") for i, image in enumerate(value)]
    if any(image.shape != images[0].shape for image in images):
        raise ConfigError("images", "must all have the same channels, height and width")
    return torch.stack(images)


def parse_file(value, shape, name="file"):
    """Untrusted base64 of a PNG or JPEG file -> float (C, H, W) in [0, 1] at the dataset's shape (squeezed
    to it as the datasets are, grey or RGB), or ConfigError naming the field."""
    import base64
    import binascii

    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import resize

    if not isinstance(value, str) or not value:
        raise ConfigError(name, "must be the base64 of a PNG or JPEG file")
    if len(value) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise ConfigError(name, f"is over {MAX_FILE_BYTES // (1024 * 1024)} MB; send a smaller image")
    try:
        raw = base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(name, "is not base64; send the file's bytes as base64") from None
    if not raw:
        raise ConfigError(name, "is an empty file; send a PNG or JPEG image")
    if not (raw.startswith(b"\x89PNG\r\n\x1a\n") or raw.startswith(b"\xff\xd8")):
        raise ConfigError(name, "is not a PNG or JPEG image")
    width, height = image_size(raw)
    if width * height > MAX_PIXELS:  # a few kilobytes can describe gigabytes of pixels: refused before decoding
        raise ConfigError(name, f"is {width}x{height} pixels; an image may have at most {MAX_PIXELS:,} (4096x4096)")
    mode = ImageReadMode.GRAY if shape[0] == 1 else ImageReadMode.RGB
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = decode_image(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=mode)
    except (RuntimeError, ValueError):
        raise ConfigError(name, "could not be decoded: the image is truncated or damaged") from None
    if image.shape[1] < 1 or image.shape[2] < 1:
        raise ConfigError(name, "has no pixels")
    if image.dtype != torch.uint8:  # a 16-bit PNG: scaled to 0..255, not cut
        from torchvision.transforms.v2.functional import to_dtype

        image = to_dtype(image, torch.uint8, scale=True)
    if tuple(image.shape[1:]) != tuple(shape[1:]):
        image = resize(image, list(shape[1:]), antialias=True)
    return image.float().div_(255)


def image_size(raw):
    """(width, height) from a PNG's IHDR or a JPEG's frame header, read without decoding; (0, 0) when the
    header is cut short (the decoder then says the file is damaged)."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return (int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")) if len(raw) >= 24 else (0, 0)
    i = 2
    while i + 9 < len(raw) and raw[i] == 0xFF:
        marker = raw[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            return int.from_bytes(raw[i + 7 : i + 9], "big"), int.from_bytes(raw[i + 5 : i + 7], "big")
        i += 2 + int.from_bytes(raw[i + 2 : i + 4], "big")
    return 0, 0


def checkpoint(path):
    """-> (state dict, meta) from a weight file, loaded with weights_only=True (no pickled code). Files
    written before datasets had shapes hold a bare state dict of a MNIST-shaped model: meta is None."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(saved, dict) and "state_dict" in saved:
        return saved["state_dict"], saved["meta"]
    return saved, None


def meta_of(cfg, meta):
    """A checkpoint's meta, or that of the dataset an old file's run was trained on."""
    if meta is not None:
        return meta
    from .datasets import BUILTIN

    norm = data.norm_of(cfg.dataset)
    classes = list(BUILTIN[cfg.dataset].classes)
    return {"dataset": cfg.dataset, "classes": classes, "shape": [1, 28, 28], **norm.to_dict()}


def load_model(cfg, path):
    """-> (model in eval mode on the CPU, meta, Norm) rebuilt from a run's weight file."""
    state, meta = checkpoint(path)
    meta = meta_of(cfg, meta)
    model = build_model(cfg, meta["shape"], len(meta["classes"]))
    model.load_state_dict(state)
    return model.eval(), meta, data.Norm(meta["mean"], meta["std"])


class Predictor:
    """Keeps one CPU model per run (the newest few), rebuilt when its weight file changes."""

    def __init__(self, size=CACHED_MODELS):
        self.size = size
        self.cache = OrderedDict()  # run_id -> (mtime_ns, model, meta, norm), least recently used first

    def entry(self, run, path):
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            raise NoWeights(f"Run {run.id} has no weights yet; wait until it has trained for a few seconds.") from None
        cached = self.cache.get(run.id)
        if cached and cached[0] == stamp:
            self.cache.move_to_end(run.id)
            return cached
        self.cache[run.id] = (stamp, *load_model(run.config, path))
        self.cache.move_to_end(run.id)
        if len(self.cache) > self.size:  # a 6x256 k=7 model holds ~64 MB
            self.cache.popitem(last=False)
        return self.cache[run.id]

    def model(self, run, path):
        return self.entry(run, path)[1]

    def meta(self, run, path):
        return self.entry(run, path)[2]

    def probabilities(self, run, path, images, field="images"):
        """images float (B, C, H, W) in [0, 1], the run's shape -> probabilities (B, classes)."""
        _, model, meta, norm = self.entry(run, path)
        if list(images.shape[1:]) != list(meta["shape"]):
            c, h, w = meta["shape"]
            kind = "grey" if c == 1 else "RGB"
            raise ConfigError(field, f"must be {kind} {h}x{w} images for run {run.id} ({meta['dataset']})")
        return probabilities(model, images.mul(255), norm)
