"""The run config, declared once: each field's type, bounds, choices, default, help, and the presets.

validate() turns untrusted JSON (a form as typed, a request body, a CLI file) into a RunConfig or raises
ConfigError naming the field and what is allowed. schema() is what GET /api/schema serves; the page
builds its form from it and keeps no copy of any rule.
"""

import re
from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import layers as layer_decls

DATASETS = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}  # built-in name -> training-set size
SIDES = {"mnist": 28, "fashion_mnist": 28, "cifar10": 32}  # built-in name -> its images' side, which never changes
MIN_SIDE, MAX_SIDE, DEFAULT_SIDE = 28, 64, 32  # a folder dataset's images are resized to a square of this side
FOLDER_NAME = re.compile(r"folder:([A-Za-z0-9_-]{1,64})", re.ASCII)  # a user's image folder: a name, never a path
DATASET_RULE = "must be mnist, fashion_mnist, cifar10 or folder:<name>, a name of 1 to 64 letters, digits, _ or -"
MAX_TRAIN = 1_000_000  # a folder dataset's cap; a built-in one's is its size
MAX_LAYERS, MAX_CHANNELS = 6, 256
CHANNELS_RULE = f"must be 1 to {MAX_LAYERS} layers of 1 to {MAX_CHANNELS} channels, like 16-32-64"
CHANNELS_TEXT = re.compile(r"\d+([\s,\-]+\d+)*", re.ASCII)  # "16-32-64", "16,32,64", "16 32 64"


class ConfigError(ValueError):
    """Bad input; the message is a sentence a user can act on. `errors` maps every bad field to its rule."""

    def __init__(self, field_name, message, errors=None):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.errors = errors or {field_name: message}


def whole(value):
    """A whole number as a form or a JSON file types it: 64, 64.0 or "64". A string must be digits, so
    "5.0", "1e3" or "0x10" are refused like any other text; pydantic then checks the number."""
    if isinstance(value, bool):  # bool is an int in Python; "true" as a size is a mistake, not 1
        raise ValueError("not a number")
    if isinstance(value, str):
        if not re.fullmatch(r"\d+", value.strip(), re.ASCII):
            raise ValueError("not digits")
        return int(value)
    return value


class Augment(BaseModel):
    """Done on whole uint8 batches on the device, never per sample."""

    model_config = ConfigDict(extra="forbid")
    crop: int = Field(0, ge=0, le=8, description="random crop after padding this many pixels; 0 = off")
    flip: bool = Field(False, description="random horizontal flip")

    @field_validator("crop", mode="before")
    @classmethod
    def _crop(cls, value):
        return whole(value)

    @field_validator("flip", mode="before")
    @classmethod
    def _flip(cls, value):
        if value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise ValueError("not true or false")
        return value


class RunConfig(BaseModel):
    """One model's config. Fields are declared in the order the form shows them."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Annotated[int, Field(ge=1, le=MAX_CHANNELS)]] = Field(
        [16, 32, 64], min_length=1, max_length=MAX_LAYERS, description="conv kernels per layer"
    )
    kernel_size: Literal[3, 5, 7] = Field(3, description="square kernel of every conv layer, same padding")
    layers: list[layer_decls.AnyLayer] | None = Field(
        None, max_length=layer_decls.MAX_LAYERS, description="a layer stack; replaces channels and kernel_size"
    )
    model: Literal["resnet18"] | None = Field(
        None, description="a named model, trained from scratch; replaces channels, kernel_size and layers"
    )
    optimizer: Literal["adam", "sgd", "rmsprop"] = Field("adam", description="sgd uses momentum 0.9")
    lr: float = Field(1e-3, ge=1e-5, le=1, allow_inf_nan=False, description="learning rate")
    weight_decay: float = Field(
        0, ge=0, le=0.1, allow_inf_nan=False, description="decoupled for adam (AdamW), L2 for sgd and rmsprop"
    )
    schedule: Literal["none", "step", "cosine", "onecycle"] = Field(
        "none", description="the learning rate over the run: step divides it by 10 after one third and after two"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="images per training step")
    epochs: int = Field(3, ge=1, le=50, description="passes over the training set")
    dataset: str = Field("mnist", description="the data it trains and is tested on")
    # None: the dataset's own side, DEFAULT_SIDE for a folder. The page shows it for folder datasets only.
    image_size: int | None = Field(
        None,
        ge=MIN_SIDE,
        le=MAX_SIDE,
        description=f"folder datasets: the side images are resized to; empty = {DEFAULT_SIDE}",
        json_schema_extra={"only_for": "folder:", "empty": str(DEFAULT_SIDE)},
    )
    augment: Augment = Field(default_factory=lambda: Augment(), description="random changes to training batches")
    validation: float = Field(
        0, ge=0, le=0.5, allow_inf_nan=False, description="share of the training set held out to pick the best epoch"
    )
    patience: int = Field(0, ge=0, le=50, description="epochs without a better validation score before it stops")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="makes a run repeatable")
    train_samples: int | None = Field(None, ge=1, le=MAX_TRAIN, description="optional cap: the first N training images")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 where the hardware has it natively, else fp32"
    )

    # ---- what a form or a JSON file may type, before the declared types are checked ----
    @model_validator(mode="before")
    @classmethod
    def _strip(cls, data):
        return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()} if isinstance(data, dict) else data

    @field_validator("channels", mode="before")
    @classmethod
    def _channels_text(cls, value):
        if isinstance(value, str):
            if not CHANNELS_TEXT.fullmatch(value):
                raise ValueError(CHANNELS_RULE)
            return re.split(r"[\s,\-]+", value)
        if isinstance(value, list):
            return [whole(v) for v in value]
        return value

    @field_validator("kernel_size", mode="before")
    @classmethod
    def _kernel(cls, value):
        return whole(value)

    @field_validator("optimizer", "precision", "schedule", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value):
        return None if value in ("", "none") else value.lower() if isinstance(value, str) else value

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, value):
        if not isinstance(value, str):
            raise ValueError(DATASET_RULE)
        name = value if value.startswith("folder:") else value.lower()
        if name not in DATASETS and not FOLDER_NAME.fullmatch(name):
            raise ValueError(DATASET_RULE)
        return name

    @field_validator("batch_size", "epochs", "seed", "train_samples", "patience", "image_size", mode="before")
    @classmethod
    def _whole(cls, value, info):
        if value in ("", None) and info.field_name in ("seed", "train_samples", "image_size"):
            return cls.model_fields[info.field_name].default  # an empty optional box
        return whole(value)

    @field_validator("lr", "weight_decay", "validation", mode="before")
    @classmethod
    def _not_bool(cls, value):
        if isinstance(value, bool):
            raise ValueError("not a number")
        return value

    def to_dict(self):
        return self.model_dump(exclude_none=False)

    def label(self):
        """A short name for the network: resnet18, "6 layers" or 16-32-64."""
        if self.model:
            return self.model
        if self.layers is not None:
            return f"{len(self.layers)} layers"
        return "-".join(map(str, self.channels))


FIELDS = tuple(RunConfig.model_fields)
DEFAULT_B = {"channels": [8, 8, 8]}
CLASSIC = {"layers": None, "model": None}  # a shorthand preset clears the other two ways of naming a network


def conv(out, padding="same"):
    return {"type": "conv", "out": out, "kernel": 3, "stride": 1, "padding": padding}


POOL, RELU = {"type": "maxpool", "size": 2, "stride": None}, {"type": "relu"}
# The CIFAR-10 lab network: 1,070,794 parameters and 6,654,464 MACs per 3x32x32 image.
LAB = [conv(32), RELU, POOL, conv(64), RELU, POOL, {"type": "flatten"}, {"type": "linear", "out": 256}, RELU]
# Two valid 3x3 convs for 28x28 input: 225,034 parameters.
TWO_CONV = [conv(32, "valid"), RELU, POOL, conv(64, "valid"), RELU, POOL, {"type": "flatten"}]
TWO_CONV += [{"type": "linear", "out": 128}, RELU]
# Presets change the architecture only; training settings stay as typed.
PRESETS = {
    "classic": {"label": "classic 16-32-64", "values": {"channels": [16, 32, 64], "kernel_size": 3, **CLASSIC}},
    "small": {"label": "small 8-8-8", "values": {"channels": [8, 8, 8], "kernel_size": 3, **CLASSIC}},
    "tiny": {"label": "tiny 4-8", "values": {"channels": [4, 8], "kernel_size": 3, **CLASSIC}},
    "wide": {"label": "wide 64-128-256, 5x5", "values": {"channels": [64, 128, 256], "kernel_size": 5, **CLASSIC}},
    "lab": {"label": "CIFAR-10 lab network (2 convs, 256 hidden)", "values": {"layers": LAB, "model": None}},
    "two_conv": {"label": "two valid convs, 128 hidden (28x28)", "values": {"layers": TWO_CONV, "model": None}},
    "resnet18": {"label": "ResNet18 (torchvision, from scratch)", "values": {"layers": None, "model": "resnet18"}},
}
PAIR = ("classic", "small")  # the page's one-click pair: A, B


def defaults_for(slot):
    """Model A (slot 0) takes RunConfig's defaults; model B (slot 1) is the small 8-8-8 model."""
    return DEFAULT_B if slot == 1 else None


NESTED_RULES = {
    "channels": CHANNELS_RULE,
    "dataset": DATASET_RULE,
    "layers": f"must be a list of 1 to {layer_decls.MAX_LAYERS} layers, each an object with a type: "
    + ", ".join(layer_decls.TYPES),
    "model": "must be resnet18, or empty for layers or channels",
    "augment": 'must be {"crop": 0 to 8 pixels of padding, "flip": true or false}',
    "train_samples": f"must be a whole number from 1 to the dataset's training-set size ({MAX_TRAIN} at most)",
    "image_size": f"must be a whole number of pixels from {MIN_SIDE} to {MAX_SIDE}, or empty for {DEFAULT_SIDE}",
}


def rule(name):
    """What a field allows, as the end of a sentence, worked out from its declaration."""
    if name in NESTED_RULES:
        return NESTED_RULES[name]
    info = RunConfig.model_fields[name]
    choices = getattr(info.annotation, "__args__", ())
    if all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in choices) and choices:
        return "must be one of " + ", ".join(map(str, choices))
    low = next(m.ge for m in info.metadata if isinstance(m, Ge))
    high = next(m.le for m in info.metadata if isinstance(m, Le))
    if info.annotation is float:
        return f"must be a number from {low:g} to {high:g}"
    return f"must be a whole number from {low} to {high}"


def validate(data, defaults=None):
    """Untrusted dict -> RunConfig. Missing fields take defaults (RunConfig's, then `defaults`)."""
    if not isinstance(data, dict):
        raise ConfigError("config", "must be a JSON object of model fields")
    try:
        cfg = RunConfig.model_validate({**(defaults or {}), **data})
    except ValidationError as exc:
        errors = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "config"
            if name == "layers" and len(error["loc"]) > 1:  # ("layers", 3, "conv", "out"): name the layer
                where, message = layer_error(error)
                errors.setdefault(where, message)
                continue
            if name == "augment" and len(error["loc"]) > 1:
                errors.setdefault("augment", rule("augment"))
                continue
            if error["type"] == "extra_forbidden":
                errors[name] = "is not a config field; allowed: " + ", ".join(sorted(FIELDS))
            else:
                errors.setdefault(name, rule(name) if name in FIELDS else error["msg"])
        first = min(errors, key=order)
        raise ConfigError(first, errors[first], errors) from None
    cap = DATASETS.get(cfg.dataset)
    if cap and cfg.train_samples is not None and cfg.train_samples > cap:  # the bound depends on the data set
        raise ConfigError("train_samples", f"must be a whole number from 1 to {cap} for {cfg.dataset}")
    side = SIDES.get(cfg.dataset)
    if side and cfg.image_size not in (None, side):  # refused, not ignored: a run is never silently other than asked
        raise ConfigError(
            "image_size", f"applies to folder datasets only: {cfg.dataset} images are {side}x{side}; leave it empty"
        )
    if cfg.layers == []:
        raise ConfigError("layers", rule("layers"))
    if cfg.model and cfg.layers is not None:
        raise ConfigError("model", "give either model or layers, not both")
    if cfg.patience and not cfg.validation:
        raise ConfigError("patience", "needs a validation share above 0: early stopping watches the validation score")
    return cfg


def order(name):
    """Where a field comes in the form; a layer's error sorts with `layers`, in layer order."""
    if name.startswith("layers["):
        return FIELDS.index("layers") + int(name[7:].split("]")[0]) / 1000
    return FIELDS.index(name) if name in FIELDS else -1


def layer_error(error):
    """A pydantic error inside `layers` -> ("layers[i]", "sentence naming the layer's field")."""
    loc = error["loc"]
    where = f"layers[{loc[1]}]"
    if error["type"] in ("union_tag_invalid", "union_tag_not_found", "model_attributes_type", "dict_type"):
        if error["type"] in ("model_attributes_type", "dict_type"):
            return where, "must be an object with a type: " + ", ".join(layer_decls.TYPES)
        return where, layer_decls.rule(None, "type")
    if len(loc) == 3:  # the layer as a whole, from its own check
        return where, f"{loc[2]}: " + error["msg"].removeprefix("Value error, ")
    layer_type, name = (loc[2], str(loc[3])) if len(loc) > 3 else (None, "type")
    if error["type"] == "extra_forbidden":
        return where, layer_decls.rule(layer_type, name)
    if error["type"] == "missing":
        return where, f"{layer_type} needs {name}: " + layer_decls.rule(layer_type, name)
    return where, layer_decls.rule(layer_type, name)


def schema():
    """The form's source of truth: JSON Schema of the fields, each slot's defaults, and the presets."""
    return {
        "config": RunConfig.model_json_schema(),
        "fields": list(FIELDS),
        "defaults": {slot: validate({}, defaults_for(i)).to_dict() for i, slot in enumerate("ab")},
        "rules": {name: rule(name) for name in FIELDS},  # what each field allows, as the error says it
        "presets": PRESETS,
        "pair": list(PAIR),
    }
