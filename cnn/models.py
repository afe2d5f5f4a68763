"""The network a RunConfig names, built for a dataset's shape and class count, and facts about its size.

Three ways to name one:
- `channels` + `kernel_size`, the classic rule: each conv k x k (same padding) -> ReLU, with a 2x2 max-pool
  after the first two, then flatten -> linear to the classes (16-32-64, k=3 is the classic 3-layer CNN);
- `layers`, a stack of the types in cnn/layers.py; the final linear to the classes is appended, and a
  linear after a feature map implies the flatten;
- `model: "resnet18"`, torchvision's, weights=None; its first conv takes one channel for grey data.

describe() walks the layers with the input's shape and answers each layer's output shape, parameters and
multiply-accumulates, or a ConfigError naming the layer (`layers[3]`) that cannot work.
"""

import torch
from torch import nn

from .config import ConfigError
from .first_conv import FirstConv

MNIST_SHAPE, CLASSES = (1, 28, 28), 10  # the shape and class count of the first datasets
POOLED_LAYERS = 2  # the classic rule max-pools after this many first conv layers
MAX_PARAMS = 50_000_000
ACTIVATION = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def stack(cfg):
    """The layer dicts of a channels or layers config, as written (the classic rule spelled out)."""
    if cfg.layers is not None:
        return [layer.model_dump() for layer in cfg.layers]
    out = []
    for i, ch in enumerate(cfg.channels):
        out += [{"type": "conv", "out": ch, "kernel": cfg.kernel_size, "stride": 1, "padding": "same"}]
        out += [{"type": "relu"}] + ([{"type": "maxpool", "size": 2, "stride": None}] if i < POOLED_LAYERS else [])
    return out


def conv_side(side, k, stride, padding):
    if padding == "same":
        return side if stride == 1 else (side + 2 * (k // 2) - k) // stride + 1
    p = 0 if padding == "valid" else padding
    return (side + 2 * p - k) // stride + 1


def walk(cfg, shape, classes, build, first_conv=False):
    """-> (rows, modules): a row per layer {name, type, output_shape, params, macs, index} (index: the
    layer's place in cfg.layers, None for one the rule adds) and, when `build`, the modules."""
    rows, modules, counts = [], [], {}
    c, h, w = shape
    flat = None  # features once flattened
    field = "layers" if cfg.layers is not None else "channels"

    def add(kind, index, module, out_shape, params, macs, name=None):
        counts[kind] = counts.get(kind, 0) + 1
        row = {"name": name or f"{kind}{counts[kind]}", "type": kind, "output_shape": list(out_shape)}
        index = index if cfg.layers is not None else None  # the classic rule's layers are not the user's list
        rows.append({**row, "params": params, "macs": macs, "index": index})
        if build:
            modules.append(module())

    for index, layer in enumerate(stack(cfg)):
        where = f"layers[{index}]" if cfg.layers is not None else field
        kind = layer["type"]
        if kind in ("conv", "maxpool", "avgpool") and flat is not None:
            raise ConfigError(where, f"{kind} needs a feature map, but an earlier layer flattened it")
        if kind == "conv":
            k, s, pad = layer["kernel"], layer["stride"], layer["padding"]
            oh, ow = conv_side(h, k, s, pad), conv_side(w, k, s, pad)
            if oh < 1 or ow < 1:
                raise ConfigError(where, f"conv {k}x{k} makes the {h}x{w} map smaller than 1x1")
            out, in_c = layer["out"], c
            torch_pad = pad if pad != "same" or s == 1 else k // 2
            first = first_conv and cfg.layers is None and index == 0 and c == 1  # FirstConv's faster backward

            def make(in_c=in_c, out=out, k=k, s=s, p=torch_pad, first=first):
                return FirstConv(in_c, out, k, padding=k // 2) if first else nn.Conv2d(in_c, out, k, s, p)

            add("conv", index, make, (out, oh, ow), out * (in_c * k * k + 1), out * in_c * k * k * oh * ow)
            c, h, w = out, oh, ow
        elif kind in ("maxpool", "avgpool"):
            size, s = layer["size"], layer["stride"] or layer["size"]
            if size > h or size > w:
                raise ConfigError(where, f"{kind} of size {size} does not fit the {h}x{w} map")
            h, w = (h - size) // s + 1, (w - size) // s + 1
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            add(kind, index, lambda pool=pool, size=size, s=s: pool(size, s), (c, h, w), 0, 0)
        elif kind == "batchnorm":
            if cfg.batch_size < 2:
                raise ConfigError(where, "batchnorm needs batches of at least 2 images; batch_size is 1")
            n = flat or c
            norm = nn.BatchNorm1d if flat else nn.BatchNorm2d
            add(kind, index, lambda norm=norm, n=n: norm(n), (flat,) if flat else (c, h, w), 2 * n, 0)
        elif kind == "dropout":
            add(kind, index, lambda p=layer["p"]: nn.Dropout(p), (flat,) if flat else (c, h, w), 0, 0)
        elif kind in ACTIVATION:
            act = ACTIVATION[kind]
            make = (lambda act=act: act(inplace=True)) if kind in ("relu", "leaky_relu") else act
            add(kind, index, make, (flat,) if flat else (c, h, w), 0, 0)
        elif kind == "flatten":
            flat = flat or c * h * w
            add(kind, index, nn.Flatten, (flat,), 0, 0)
        elif kind == "linear":
            if flat is None:
                flat = c * h * w
                add("flatten", None, nn.Flatten, (flat,), 0, 0)
            out, n = layer["out"], flat
            add(kind, index, lambda n=n, out=out: nn.Linear(n, out), (out,), out * (n + 1), out * n)
            flat = out
    if flat is None:
        flat = c * h * w
        add("flatten", None, nn.Flatten, (flat,), 0, 0)
    add("linear", None, lambda: nn.Linear(flat, classes), (classes,), classes * (flat + 1), classes * flat, "fc")
    too_big(rows, field)
    return rows, modules


def too_big(rows, field):
    total = sum(r["params"] for r in rows)
    if total > MAX_PARAMS:
        biggest = max(rows, key=lambda r: r["params"])
        where = f"layers[{biggest['index']}]" if field == "layers" and biggest["index"] is not None else field
        raise ConfigError(
            where,
            f"makes the model {total:,} parameters ({biggest['name']} holds {biggest['params']:,}); "
            f"at most {MAX_PARAMS:,} are allowed",
        )


def resnet18(shape, classes):
    from torchvision.models import resnet18 as torchvision_resnet18

    model = torchvision_resnet18(weights=None, num_classes=classes)
    if shape[0] != 3:
        model.conv1 = nn.Conv2d(shape[0], 64, 7, 2, 3, bias=False)
    return model


RESNET_TYPES = {"Conv2d": "conv", "BatchNorm2d": "batchnorm", "ReLU": "relu", "MaxPool2d": "maxpool"}
RESNET_TYPES |= {"Sequential": "stage", "AdaptiveAvgPool2d": "avgpool", "Linear": "linear"}
RESNET_PARTS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")


def describe_resnet(cfg, shape, classes):
    """Rows for resnet18's top-level parts, measured by a forward pass on the meta device (no memory)."""
    if cfg.batch_size < 2:
        raise ConfigError("model", "resnet18 has batch norm, which needs batches of at least 2 images")
    with torch.device("meta"):
        model = resnet18(shape, classes).eval()
    shapes, macs = {}, {}

    def count(part):
        def hook(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                macs[part] = macs.get(part, 0) + output[0].numel() * module.in_channels // module.groups * k
            elif isinstance(module, nn.Linear):
                macs[part] = macs.get(part, 0) + module.in_features * module.out_features

        return hook

    handles = []
    for part in RESNET_PARTS:
        child = getattr(model, part)
        handles.append(child.register_forward_hook(lambda m, i, o, part=part: shapes.__setitem__(part, o.shape[1:])))
        handles += [m.register_forward_hook(count(part)) for m in child.modules()]
    with torch.no_grad():
        model(torch.empty(1, *shape, device="meta"))
    for h in handles:
        h.remove()
    return [
        {
            "name": part,
            "type": RESNET_TYPES[type(getattr(model, part)).__name__],
            "output_shape": [classes] if part == "fc" else list(shapes[part]),
            "params": sum(p.numel() for p in getattr(model, part).parameters()),
            "macs": macs.get(part, 0),
            "index": None,
        }
        for part in RESNET_PARTS
    ]


def describe(cfg, shape=MNIST_SHAPE, classes=CLASSES):
    """-> [{name, type, output_shape, params, macs, index}], or ConfigError naming the layer that cannot work."""
    if cfg.model == "resnet18":
        return describe_resnet(cfg, tuple(shape), classes)
    return walk(cfg, tuple(shape), classes, build=False)[0]


def build_model(cfg, shape=MNIST_SHAPE, classes=CLASSES, form="first_conv"):
    """The network in one of its forms (cnn/forms.py), all the same function with the same state dict keys:
    "plain" as written; for the classic rule also "pool_first" (classic_order) and "first_conv" (that, with
    FirstConv for a one-channel first layer). Other networks have only their plain form."""
    if cfg.model == "resnet18":
        return resnet18(tuple(shape), classes)
    modules = walk(cfg, tuple(shape), classes, build=True, first_conv=form == "first_conv")[1]
    if cfg.layers is None and form != "plain":
        modules = classic_order(modules)
    return nn.Sequential(*modules)


def classic_order(modules):
    """The classic rule, computed faster on a CPU, same function and state dict keys' shapes:
    max-pool and ReLU commute (ReLU never reorders values), so pooling first runs ReLU on a quarter of the
    values (1.12x faster training); the last ReLU goes after the flatten, where a ReLU backward across two
    memory orders cost 2% of a step."""
    out = []
    for m in modules:
        if isinstance(m, nn.MaxPool2d) and out and isinstance(out[-1], nn.ReLU):
            out.insert(len(out) - 1, m)
        else:
            out.append(m)
    flatten = next(i for i, m in enumerate(out) if isinstance(m, nn.Flatten))
    if isinstance(out[flatten - 1], nn.ReLU):
        out[flatten - 1], out[flatten] = out[flatten], out[flatten - 1]
    return out


def param_count(cfg, shape=MNIST_SHAPE, classes=CLASSES):
    """Weights + biases, worked out from the config without building the model."""
    return sum(r["params"] for r in describe(cfg, shape, classes))


def mac_count(cfg, shape=MNIST_SHAPE, classes=CLASSES):
    """Multiply-accumulates per image of the convs and linears, worked out from the config."""
    return sum(r["macs"] for r in describe(cfg, shape, classes))


def conv_layers(model):
    """(name, module) of each conv layer in the order the model runs them, named conv1, conv2, ..."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return [(f"conv{i + 1}", m) for i, m in enumerate(convs)]


def learnable_layers(model):
    """(name, module) of every conv and linear layer, the last linear named fc: where gradients are read."""
    found = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    convs = linears = 0
    named = []
    for m in found:
        if isinstance(m, nn.Conv2d):
            convs += 1
            named.append((f"conv{convs}", m))
        else:
            linears += 1
            named.append(("fc" if m is found[-1] else f"linear{linears}", m))
    return named
