"""The run config: one per model, with defaults and validation.

validate() turns untrusted JSON (a form, a request body, a CLI file) into a
RunConfig or raises ConfigError whose message names the field and what is allowed.
"""

import re
from dataclasses import asdict, dataclass, field, fields

DATASETS = {"mnist": 60_000, "fashion_mnist": 60_000}  # name -> training-set size
OPTIMIZERS = ("adam", "sgd", "rmsprop")
KERNEL_SIZES = (3, 5, 7)
PRECISIONS = ("auto", "fp32", "bf16")
MAX_LAYERS, MAX_CHANNELS = 6, 256


class ConfigError(ValueError):
    """Bad input; the message is a sentence a user can act on."""

    def __init__(self, field_name, message):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class RunConfig:
    dataset: str = "mnist"  # which training data
    channels: list = field(default_factory=lambda: [16, 32, 64])  # conv kernels per layer
    kernel_size: int = 3  # square kernel, same padding
    optimizer: str = "adam"  # adam | sgd (momentum 0.9) | rmsprop
    lr: float = 1e-3  # learning rate
    batch_size: int = 64
    epochs: int = 3
    seed: int = 0  # makes a run repeatable
    precision: str = "auto"  # fp32 | bf16 | auto (bf16 where the hardware has it natively)
    train_samples: int | None = None  # cap on the training set (first N samples); None = all

    def to_dict(self):
        return asdict(self)


DEFAULT_B = {"channels": [8, 8, 8]}


def defaults_for(slot):
    """Model A (slot 0) takes RunConfig's defaults; model B (slot 1) is the small 8-8-8 model."""
    return DEFAULT_B if slot == 1 else None


FIELDS = {f.name for f in fields(RunConfig)}


def _int(name, value, low, high):
    # bool is an int in Python; "true" as a batch size is a mistake, not 1
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(name, f"must be a whole number from {low} to {high}")
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise ConfigError(name, f"must be a whole number from {low} to {high}") from None
    # the range check comes first: int() of an infinity raises
    if number != number or not low <= number <= high or number != int(number):
        raise ConfigError(name, f"must be a whole number from {low} to {high}")
    return int(number)


def _choice(name, value, allowed):
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    raise ConfigError(name, "must be one of " + ", ".join(map(str, allowed)))


def parse_channels(value):
    """'16-32-64', '16,32,64' or [16, 32, 64] -> [16, 32, 64]."""
    rule = f"must be 1 to {MAX_LAYERS} layers of 1 to {MAX_CHANNELS} channels, like 16-32-64"
    if isinstance(value, str):
        if not re.fullmatch(r"\d+([\s,\-]+\d+)*", value.strip(), re.ASCII):
            raise ConfigError("channels", rule)
        parts = re.split(r"[\s,\-]+", value.strip())
    elif isinstance(value, list):
        parts = value
    else:
        raise ConfigError("channels", rule)
    if not 1 <= len(parts) <= MAX_LAYERS:
        raise ConfigError("channels", rule)
    try:
        return [_int("channels", p, 1, MAX_CHANNELS) for p in parts]
    except ConfigError:
        raise ConfigError("channels", rule) from None


def _lr(value):
    rule = "must be a number from 1e-05 to 1"
    if isinstance(value, bool):
        raise ConfigError("lr", rule)
    try:
        lr = float(value)
    except (TypeError, ValueError):
        raise ConfigError("lr", rule) from None
    if not 1e-5 <= lr <= 1:  # also rejects NaN
        raise ConfigError("lr", rule)
    return lr


def validate(data, defaults=None):
    """Untrusted dict -> RunConfig. Missing fields take defaults (RunConfig's, then `defaults`)."""
    if not isinstance(data, dict):
        raise ConfigError("config", "must be a JSON object of model fields")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ConfigError(unknown[0], "is not a config field; allowed: " + ", ".join(sorted(FIELDS)))
    merged = {**RunConfig().to_dict(), **(defaults or {}), **data}
    dataset = _choice("dataset", merged["dataset"], tuple(DATASETS))
    samples = merged["train_samples"]
    if samples in (None, ""):
        samples = None
    else:
        samples = _int("train_samples", samples, 1, DATASETS[dataset])
    seed = merged["seed"]
    return RunConfig(
        dataset=dataset,
        channels=parse_channels(merged["channels"]),
        kernel_size=_kernel(merged["kernel_size"]),
        optimizer=_choice("optimizer", merged["optimizer"], OPTIMIZERS),
        lr=_lr(merged["lr"]),
        batch_size=_int("batch_size", merged["batch_size"], 1, 4096),
        epochs=_int("epochs", merged["epochs"], 1, 50),
        seed=_int("seed", 0 if seed in (None, "") else seed, 0, 2**31 - 1),
        precision=_choice("precision", merged["precision"], PRECISIONS),
        train_samples=samples,
    )


def _kernel(value):
    rule = "must be one of " + ", ".join(map(str, KERNEL_SIZES))
    try:
        size = _int("kernel_size", value, 1, max(KERNEL_SIZES))
    except ConfigError:
        size = None
    if size not in KERNEL_SIZES:
        raise ConfigError("kernel_size", rule)
    return size
