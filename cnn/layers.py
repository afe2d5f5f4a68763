"""The layers a model config may list, declared once: each type's fields, bounds and defaults.

A layer is a JSON object with `type`; pydantic picks its declaration by that tag. cnn/models.py builds
and measures them; rule() words what each field allows, as the error a user sees says it.
"""

from typing import Annotated, Literal

from annotated_types import Ge, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_LAYERS = 40
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "tanh", "sigmoid")


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_bool(cls, data):
        # bool is an int in Python; true as a channel count is a mistake, not 1
        flags = (
            [k for k, v in data.items() if isinstance(v, bool) and k in cls.model_fields]
            if isinstance(data, dict)
            else []
        )
        if flags:  # an unknown field is left to the "takes" rule
            raise ValueError(f"{flags[0]} is true or false, not a number")
        return data


class Conv(Layer):
    type: Literal["conv"]
    out: int = Field(ge=1, le=1024, description="output channels")
    kernel: int = Field(3, ge=1, le=7, description="square kernel side")
    stride: Literal[1, 2] = 1
    padding: Literal["same", "valid"] | Annotated[int, Field(ge=0, le=3)] = Field(
        "same", description="same keeps the side (at stride 2, halves it), valid shrinks it by kernel - 1"
    )


class Pool(Layer):
    type: Literal["maxpool", "avgpool"]
    size: int = Field(2, ge=1, le=8, description="square window side")
    stride: int | None = Field(None, ge=1, le=8, description="defaults to size")


class BatchNorm(Layer):
    type: Literal["batchnorm"]


class Dropout(Layer):
    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1, allow_inf_nan=False, description="share of values zeroed while training")


class Activation(Layer):
    type: Literal[ACTIVATIONS]


class Flatten(Layer):
    type: Literal["flatten"]


class Linear(Layer):
    type: Literal["linear"]
    out: int = Field(ge=1, le=4096, description="output units")


KINDS = (Conv, Pool, BatchNorm, Dropout, Activation, Flatten, Linear)
TYPES = tuple(t for kind in KINDS for t in kind.model_fields["type"].annotation.__args__)
AnyLayer = Annotated[Conv | Pool | BatchNorm | Dropout | Activation | Flatten | Linear, Field(discriminator="type")]
KIND_OF = {t: kind for kind in KINDS for t in kind.model_fields["type"].annotation.__args__}


def bounds(info):
    low = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
    below = next((m.lt for m in info.metadata if isinstance(m, Lt)), None)
    high = next((m.le for m in info.metadata if isinstance(m, Le)), None)
    return low, high, below


def rule(layer_type, name):
    """What field `name` of a layer of this type allows, as the end of a sentence."""
    kind = KIND_OF.get(layer_type)
    if name == "type" or kind is None:
        return "type must be one of " + ", ".join(TYPES)
    if name not in kind.model_fields:
        allowed = [f for f in kind.model_fields if f != "type"]
        return f"{layer_type} takes " + (", ".join(allowed) if allowed else "no fields besides type")
    if kind is Conv and name == "padding":
        return "padding must be same, valid or a whole number from 0 to 3"
    if kind is Conv and name == "stride":
        return "stride must be 1 or 2"
    info = kind.model_fields[name]
    low, high, below = bounds(info)
    if info.annotation is float:
        return f"{name} must be a number from {low:g} to below {below:g}"
    return f"{name} must be a whole number from {low} to {high}"
