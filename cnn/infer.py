"""Inference, once: input preparation and a batched forward pass.

Training, evaluation, analysis, prediction and activations all prepare images here and run the
model through logits(). The Predictor keeps the models the server answers with, rebuilt from the
run's snapshot file (loaded with weights_only=True: no pickled code) whenever the worker replaced it.
"""

import math
from collections import OrderedDict
from contextlib import nullcontext

import torch

from . import data
from .config import ConfigError
from .models import build_model, conv_layers

SIDE = 28
BATCH = 1000  # images per forward pass when a whole set is classified
MAX_IMAGES = 64  # per predict request
CACHED_MODELS = 8


class NoWeights(LookupError):
    """The run has not written a weight snapshot yet."""


def prepare(images, dataset, device=None):
    """Pixels 0..255 (uint8 or float) (B, 28, 28) -> normalised float (B, 1, 28, 28) on `device`."""
    x = data.normalise(images.to(device) if device is not None else images, dataset)
    # channels_last lets oneDNN pick its fastest conv kernels on the CPU
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


def logits(model, images, dataset, autocast=nullcontext, batch=BATCH):
    """Yields (start, float logits (b, classes)) for consecutive batches of `images` (pixels 0..255)."""
    device = next(model.parameters()).device
    with torch.no_grad(), autocast():
        for start in range(0, len(images), batch):
            yield start, model(prepare(images[start : start + batch], dataset, device)).float()


def probabilities(model, images, dataset, autocast=nullcontext):
    """-> class probabilities (B, classes) on the CPU."""
    return torch.cat([torch.softmax(out, dim=1).cpu() for _, out in logits(model, images, dataset, autocast)])


def predict(model, images, dataset, autocast=nullcontext):
    """-> (predicted class, its probability) for every image, on the CPU."""
    conf, pred = probabilities(model, images, dataset, autocast).max(1)
    return pred, conf


def activations(model, images, dataset):
    """One image (1, 28, 28), pixels 0..255 -> [(name, map (C, H, W))]: each conv's output after its ReLU, at
    the conv's own resolution (the model pools before its ReLU, which gives the same function)."""
    maps, names = [], {id(m): n for n, m in conv_layers(model)}
    x = prepare(images, dataset, next(model.parameters()).device)
    with torch.no_grad():
        for module in model:
            x = module(x)
            if id(module) in names:
                maps.append((names[id(module)], torch.relu(x[0]).contiguous().cpu()))
    return maps


def parse_image(value, name="image"):
    """Untrusted JSON -> float tensor (28, 28) of pixels in [0, 1], or ConfigError naming the field."""
    rule = "must be 28 rows of 28 numbers from 0 to 1 (white digit on black, as in MNIST)"
    if not isinstance(value, list) or len(value) != SIDE:
        raise ConfigError(name, rule)
    for row in value:
        if not isinstance(row, list) or len(row) != SIDE:
            raise ConfigError(name, rule)
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 or math.isnan(v):
                raise ConfigError(name, rule)
    return torch.tensor(value, dtype=torch.float32)


def parse_images(value):
    """Untrusted JSON list of images -> float tensor (N, 28, 28) in [0, 1], 1 <= N <= MAX_IMAGES."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IMAGES:
        raise ConfigError("images", f"must be a list of 1 to {MAX_IMAGES} images of 28 rows of 28 numbers from 0 to 1")
    return torch.stack([parse_image(image, f"images[{i}]") for i, image in enumerate(value)])


class Predictor:
    """Keeps one CPU model per run (the newest few), rebuilt when its weight file changes."""

    def __init__(self, size=CACHED_MODELS):
        self.size = size
        self.cache = OrderedDict()  # run_id -> (mtime_ns, model), least recently used first

    def model(self, run, path):
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            raise NoWeights(f"Run {run.id} has no weights yet; wait until it has trained for a few seconds.") from None
        cached = self.cache.get(run.id)
        if cached and cached[0] == stamp:
            self.cache.move_to_end(run.id)
            return cached[1]
        model = build_model(run.config)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        self.cache[run.id] = (stamp, model)
        self.cache.move_to_end(run.id)
        if len(self.cache) > self.size:  # a 6x256 k=7 model holds ~64 MB
            self.cache.popitem(last=False)
        return model

    def probabilities(self, run, path, images):
        """images float (B, 28, 28) in [0, 1] -> probabilities (B, 10)."""
        return probabilities(self.model(run, path), images.mul(255), run.config.dataset)
