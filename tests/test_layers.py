"""Layer stacks and named models: every layer type builds, sizes match the real modules and torchinfo, and an
impossible stack is refused naming its layer."""

import math

import pytest
import torch
import torchinfo

from cnn.config import LAB, PRESETS, TWO_CONV, ConfigError, validate
from cnn.models import build_model, describe, mac_count, param_count

CIFAR, GREY = (3, 32, 32), (1, 28, 28)
EVERY_TYPE = [
    {"type": "conv", "out": 6, "kernel": 5, "stride": 2, "padding": 1},
    {"type": "batchnorm"},
    {"type": "leaky_relu"},
    {"type": "maxpool", "size": 3, "stride": 1},
    {"type": "conv", "out": 8, "kernel": 2, "padding": "same"},  # an even kernel: torch's own "same"
    {"type": "gelu"},
    {"type": "avgpool"},
    {"type": "conv", "out": 4, "kernel": 1, "padding": "valid"},
    {"type": "tanh"},
    {"type": "dropout", "p": 0.25},
    {"type": "flatten"},
    {"type": "linear", "out": 12},
    {"type": "batchnorm"},
    {"type": "sigmoid"},
    {"type": "relu"},
]


@pytest.mark.parametrize("shape, classes", [(CIFAR, 10), (GREY, 3), ((3, 64, 64), 100)])
def test_every_layer_type_builds_and_gives_one_score_per_class(shape, classes):
    cfg = validate({"layers": EVERY_TYPE})
    model = build_model(cfg, shape, classes)
    rows = describe(cfg, shape, classes)
    assert model(torch.randn(4, *shape)).shape == (4, classes)
    assert [r["type"] for r in rows] == [layer["type"] for layer in EVERY_TYPE] + ["linear"]  # the fc is added
    assert [r["index"] for r in rows] == [*range(len(EVERY_TYPE)), None]
    # each row's output shape is what the module really gives
    x = torch.randn(2, *shape)
    model.eval()
    for row, module in zip(rows, model, strict=True):
        x = module(x)
        assert list(x.shape[1:]) == row["output_shape"], row["name"]
        assert sum(p.numel() for p in module.parameters()) == row["params"], row["name"]
    assert param_count(cfg, shape, classes) == sum(p.numel() for p in model.parameters())


def test_a_linear_after_a_map_implies_the_flatten():
    rows = describe(validate({"layers": [{"type": "conv", "out": 4}, {"type": "linear", "out": 7}]}), GREY, 10)
    assert [(r["type"], r["index"], r["output_shape"]) for r in rows] == [
        ("conv", 0, [4, 28, 28]),
        ("flatten", None, [4 * 28 * 28]),
        ("linear", 1, [7]),
        ("linear", None, [10]),
    ]


def test_the_lab_network_has_exactly_its_published_size():
    cfg = validate({"layers": LAB})
    assert param_count(cfg, CIFAR, 10) == 1_070_794
    assert mac_count(cfg, CIFAR, 10) == 6_654_464
    assert param_count(validate({"layers": TWO_CONV}), GREY, 10) == 225_034


def test_resnet18_is_torchvisions_from_scratch_with_a_grey_stem_for_grey_data():
    cfg = validate({"model": "resnet18", "dataset": "cifar10"})
    model = build_model(cfg, CIFAR, 10)
    assert sum(p.numel() for p in model.parameters()) == param_count(cfg, CIFAR, 10) == 11_181_642
    assert round(mac_count(cfg, CIFAR, 10) / 1e6, 1) == 37.0
    grey = build_model(cfg, GREY, 10)
    assert grey.conv1.in_channels == 1 and grey(torch.zeros(2, *GREY)).shape == (2, 10)
    stages = [r["name"] for r in describe(cfg, CIFAR, 10)]
    assert stages[4:8] == ["layer1", "layer2", "layer3", "layer4"]


@pytest.mark.parametrize("preset", ["lab", "two_conv", "resnet18"])
def test_sizes_agree_with_torchinfo(preset):
    cfg = validate(PRESETS[preset]["values"])
    shape = GREY if preset == "two_conv" else CIFAR
    summary = torchinfo.summary(build_model(cfg, shape, 10), input_size=(1, *shape), verbose=0)
    assert param_count(cfg, shape, 10) == summary.total_params
    # torchinfo also counts bias adds and batch norm as mult-adds; ours are the convs' and linears' products
    layers = [i for i in summary.summary_list if i.class_name in ("Conv2d", "Linear")]
    ours = sum(r["macs"] for r in describe(cfg, shape, 10))
    bias_adds = sum(math.prod(i.output_size[1:]) for i in layers if i.module.bias is not None)
    norms = sum(i.macs for i in summary.summary_list if i.class_name == "BatchNorm2d")
    assert ours + bias_adds + norms == summary.total_mult_adds


def refused(layers, shape=GREY, **extra):
    with pytest.raises(ConfigError) as caught:
        cfg = validate({"layers": layers, **extra})
        describe(cfg, shape, 10)
    return caught.value.field, str(caught.value)


def test_impossible_stacks_are_refused_naming_the_layer():
    pool = {"type": "maxpool", "size": 2}
    field, message = refused([{"type": "conv", "out": 4, "padding": "valid", "kernel": 7}] * 5)
    assert field == "layers[4]" and "smaller than 1x1" in message
    field, message = refused([pool] * 5)  # 28 -> 14 -> 7 -> 3 -> 1 -> nothing
    assert field == "layers[4]" and "does not fit the 1x1 map" in message
    field, message = refused([{"type": "conv", "out": 4}, {"type": "batchnorm"}], batch_size=1)
    assert field == "layers[1]" and "batch_size is 1" in message
    field, message = refused([{"type": "flatten"}, {"type": "conv", "out": 4}])
    assert field == "layers[1]" and "flattened" in message
    field, message = refused([{"type": "linear", "out": 4096}, {"type": "linear", "out": 4096}] * 2, CIFAR)
    assert field == "layers[1]" and "at most 50,000,000" in message  # the biggest layer (4096 x 4096) is named
    with pytest.raises(ConfigError) as caught:
        describe(validate({"model": "resnet18", "batch_size": 1}), CIFAR, 10)
    assert caught.value.field == "model"
