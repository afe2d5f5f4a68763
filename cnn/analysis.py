"""Analysis of an ended run: `python -m cnn.analysis '<spec json>'` writes analysis.json.

Runs in its own process after a run ends (finished or stopped), from the run's
last weight snapshot, on the run's device: full test set confusion, per-class
scores, calibration, and measured size, MACs, latency and throughput.
"""

import json
import os
import sys
import time

import torch
from torch import nn

from . import datasets, infer
from .config import validate
from .train import pick_device
from .worker import die_with_parent

ECE_BINS = 15


def confusion_matrix(labels, preds, classes=10):
    """rows: true class, columns: predicted class."""
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    matrix.index_put_((labels.cpu(), preds.cpu()), torch.ones(len(labels), dtype=torch.long), accumulate=True)
    return matrix


def per_class_scores(matrix):
    tp = matrix.diag().double()
    precision = tp / matrix.sum(0).double().clamp(min=1)
    recall = tp / matrix.sum(1).double().clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return [
        {"precision": p, "recall": r, "f1": f}
        for p, r, f in zip(precision.tolist(), recall.tolist(), f1.tolist(), strict=True)
    ]


def calibration(confidence, correct, bins=ECE_BINS):
    """-> (expected calibration error, reliability bins of equal width in confidence)."""
    edges = torch.linspace(0, 1, bins + 1)
    ece, out = 0.0, []
    for low, high in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        inside = (confidence > low) & (confidence <= high)
        n = int(inside.sum())
        if n:
            conf, acc = confidence[inside].mean().item(), correct[inside].double().mean().item()
            ece += n / len(confidence) * abs(acc - conf)
        else:
            conf = acc = None
        out.append({"low": low, "high": high, "count": n, "confidence": conf, "accuracy": acc})
    return ece, out


def count_macs(model, shape=(1, 28, 28)):
    """Multiply-accumulates of the convs and linears for one image, counted during a real forward pass (in
    eval mode: batch norm cannot train on one image). Pools, norms and activations count none."""
    total, training = 0, model.training

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * module.in_channels // module.groups * k
        else:
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape, device=next(model.parameters()).device))
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    return total


def timed(fn, device, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed repeat: other work on a shared machine only adds time


def speed(model, device, autocast, shape=(1, 28, 28)):
    """-> (latency in ms per image at batch 1, images per second at batch 256)."""
    one, many = torch.zeros(1, *shape, device=device), torch.zeros(256, *shape, device=device)
    with torch.no_grad(), autocast():
        timed(lambda: model(many), device, 3)  # warm-up
        latency = timed(lambda: model(one), device, 50)
        batch = timed(lambda: model(many), device, 10)
    return latency * 1000, 256 / batch


def analyse(cfg, data_dir, weights_path, device, info, bf16=False, cache_dir=None):
    model, meta, norm = infer.load_model(cfg, weights_path)
    model.to(device)
    shape, classes = meta["shape"], len(meta["classes"])
    images, labels = datasets.load(cfg.dataset, data_dir, False, cache_dir, cfg.image_size)

    # the arithmetic it trained and was tested in, so accuracy here matches the last epoch's
    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    preds, confs = infer.predict(model, images, norm, autocast)
    matrix = confusion_matrix(labels, preds, classes)
    scores = per_class_scores(matrix)
    ece, reliability = calibration(confs, preds == labels)
    latency_ms, throughput = speed(model, device, autocast, shape)
    return {
        "confusion": matrix.tolist(),
        "per_class": scores,
        "accuracy": matrix.diag().sum().item() / len(labels),
        "macro_f1": sum(s["f1"] for s in scores) / classes,
        "classes": meta["classes"],
        "shape": shape,
        "params": sum(p.numel() for p in model.parameters()),
        "size_bytes": os.path.getsize(weights_path),
        "macs": count_macs(model, shape),
        "train_seconds": info.get("train_seconds"),
        "latency_ms": latency_ms,
        "throughput": throughput,
        "peak_memory_bytes": info.get("peak_memory_bytes"),
        "ece": ece,
        "reliability": reliability,
        "device": device.type,
        "test_samples": len(labels),
        # per test image, for galleries: predicted class and its probability
        "predictions": preds.tolist(),
        "labels": labels.tolist(),  # the test set as it was: a folder changed later is noticed, not miscounted
        "confidences": [round(c, 4) for c in confs.tolist()],
    }


def main(argv):
    spec = json.loads(argv[1])
    die_with_parent()
    torch.set_num_threads(max(1, int(spec.get("threads", 1))))
    result = analyse(
        validate(spec["config"]),
        spec["data_dir"],
        spec["weights_path"],
        pick_device(spec.get("device", "auto")),
        spec.get("info", {}),
        bf16=spec.get("precision") == "bf16",
        cache_dir=spec.get("cache_dir"),
    )
    tmp = spec["out_path"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, spec["out_path"])


if __name__ == "__main__":
    main(sys.argv)
