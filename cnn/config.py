"""The run config, declared once: each field's type, bounds, choices, default, help, and the presets.

validate() turns untrusted JSON (a form as typed, a request body, a CLI file) into a RunConfig or raises
ConfigError naming the field and what is allowed. schema() is what GET /api/schema serves; the page
builds its form from it and keeps no copy of any rule.
"""

import re
from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DATASETS = {"mnist": 60_000, "fashion_mnist": 60_000}  # name -> training-set size
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


class RunConfig(BaseModel):
    """One model's config. Fields are declared in the order the form shows them."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Annotated[int, Field(ge=1, le=MAX_CHANNELS)]] = Field(
        [16, 32, 64], min_length=1, max_length=MAX_LAYERS, description="conv kernels per layer"
    )
    kernel_size: Literal[3, 5, 7] = Field(3, description="square kernel of every conv layer, same padding")
    optimizer: Literal["adam", "sgd", "rmsprop"] = Field("adam", description="sgd uses momentum 0.9")
    lr: float = Field(1e-3, ge=1e-5, le=1, allow_inf_nan=False, description="learning rate")
    batch_size: int = Field(64, ge=1, le=4096, description="images per training step")
    epochs: int = Field(3, ge=1, le=50, description="passes over the training set")
    dataset: Literal[tuple(DATASETS)] = Field("mnist", description="the data it trains and is tested on")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="makes a run repeatable")
    train_samples: int | None = Field(
        None, ge=1, le=max(DATASETS.values()), description="optional cap: the first N training images"
    )
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

    @field_validator("optimizer", "dataset", "precision", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    @field_validator("batch_size", "epochs", "seed", "train_samples", mode="before")
    @classmethod
    def _whole(cls, value, info):
        if value in ("", None) and info.field_name in ("seed", "train_samples"):
            return cls.model_fields[info.field_name].default  # an empty optional box
        return whole(value)

    @field_validator("lr", mode="before")
    @classmethod
    def _not_bool(cls, value):
        if isinstance(value, bool):
            raise ValueError("not a number")
        return value

    def to_dict(self):
        return self.model_dump()


FIELDS = tuple(RunConfig.model_fields)
DEFAULT_B = {"channels": [8, 8, 8]}
# Presets change the architecture only; training settings stay as typed.
PRESETS = {
    "classic": {"label": "classic 16-32-64", "values": {"channels": [16, 32, 64], "kernel_size": 3}},
    "small": {"label": "small 8-8-8", "values": {"channels": [8, 8, 8], "kernel_size": 3}},
    "tiny": {"label": "tiny 4-8", "values": {"channels": [4, 8], "kernel_size": 3}},
    "wide": {"label": "wide 64-128-256, 5x5", "values": {"channels": [64, 128, 256], "kernel_size": 5}},
}
PAIR = ("classic", "small")  # the page's one-click pair: A, B


def defaults_for(slot):
    """Model A (slot 0) takes RunConfig's defaults; model B (slot 1) is the small 8-8-8 model."""
    return DEFAULT_B if slot == 1 else None


def rule(name):
    """What a field allows, as the end of a sentence, worked out from its declaration."""
    if name == "channels":
        return CHANNELS_RULE
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
            if error["type"] == "extra_forbidden":
                errors[name] = "is not a config field; allowed: " + ", ".join(sorted(FIELDS))
            else:
                errors.setdefault(name, rule(name) if name in FIELDS else error["msg"])
        first = min(errors, key=lambda n: FIELDS.index(n) if n in FIELDS else -1)
        raise ConfigError(first, errors[first], errors) from None
    cap = DATASETS[cfg.dataset]
    if cfg.train_samples is not None and cfg.train_samples > cap:  # the bound depends on the data set
        raise ConfigError("train_samples", f"must be a whole number from 1 to {cap}")
    return cfg


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
