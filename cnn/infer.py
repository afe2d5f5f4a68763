"""A 28x28 image (white digit on black, values in [0, 1]) -> ten class probabilities.

Weights come from the run's snapshot file, loaded with weights_only=True (no
pickled code), and reloaded whenever the worker has replaced the file.
"""

import math
from collections import OrderedDict

import torch

from . import data
from .config import ConfigError
from .models import build_model

SIDE = 28
CACHED_MODELS = 8


class NoWeights(LookupError):
    """The run has not written a weight snapshot yet."""


def parse_image(value):
    """Untrusted JSON -> float tensor (28, 28) in [0, 1], or ConfigError naming `image`."""
    rule = "must be 28 rows of 28 numbers from 0 to 1 (white digit on black, as in MNIST)"
    if not isinstance(value, list) or len(value) != SIDE:
        raise ConfigError("image", rule)
    for row in value:
        if not isinstance(row, list) or len(row) != SIDE:
            raise ConfigError("image", rule)
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 or math.isnan(v):
                raise ConfigError("image", rule)
    return torch.tensor(value, dtype=torch.float32)


class Predictor:
    """Keeps one CPU model per run, rebuilt when its weight file changes."""

    def __init__(self):
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
        if len(self.cache) > CACHED_MODELS:  # a 6x256 k=7 model holds ~64 MB
            self.cache.popitem(last=False)
        return model

    def probabilities(self, run, path, images):
        """images float (B, 28, 28) in [0, 1] -> probabilities (B, 10)."""
        model = self.model(run, path)
        x = data.normalise(images.mul(255), run.config.dataset)  # normalise takes 0..255 pixels
        with torch.no_grad():
            return torch.softmax(model(x).float(), dim=1)
