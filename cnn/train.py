"""The training loop. It fires events through a callback and knows nothing of sockets.

emit(name, payload) receives: run_started, batch, gradients, epoch, run_finished.
Payloads are flat dicts of plain numbers (lists of numbers for gradients).
"""

import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

from . import data, infer
from .models import build_model, conv_layers, param_count

EVAL_BATCH = 1000
GRADIENT_EVERY = 50  # batches between two gradient-flow samples


def pick_device(name="auto"):
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device):
    """True where bf16 arithmetic runs natively (so autocast speeds training up)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(cpu, name, lambda: False)() for name in checks)
    return False


def use_bf16(precision, device):
    if precision == "auto":
        return native_bf16(device)
    return precision == "bf16" and device.type in ("cpu", "cuda")


def make_optimizer(cfg, params):
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr)
    # the fused kernel updates every tensor in one pass instead of a loop of small ops
    fused = params[0].device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=cfg.lr, fused=fused)


def save_weights(model, path):
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    state = {k: v.detach().to("cpu", memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)


def peak_memory_bytes(device):
    """The process's high-water mark: CUDA memory allocated on a GPU, resident memory on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def evaluate(model, images, labels, dataset, autocast):
    """-> (mean loss, accuracy) over the whole set."""
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start, out in infer.logits(model, images, dataset, autocast, EVAL_BATCH):
        y = labels[start : start + len(out)]
        loss_sum += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    return loss_sum.item() / len(images), correct.item() / len(images)


def gradient_flow(model):
    """Mean and max |grad| of each learnable layer's weights, as tensors (no sync)."""
    layers = [*conv_layers(model), ("fc", model[-1])]
    grads = [module.weight.grad.detach().abs() for _, module in layers]
    return [name for name, _ in layers], torch.stack([g.mean() for g in grads]), torch.stack([g.max() for g in grads])


class Trainer:
    """Trains one model from a RunConfig; state is exposed, events go out through emit."""

    def __init__(
        self,
        cfg,
        data_dir,
        device="auto",
        emit=None,
        should_stop=None,
        weights_path=None,
        snapshot_seconds=2.0,
        batch_hz=20.0,
    ):
        self.cfg, self.data_dir = cfg, data_dir
        self.device = pick_device(device)
        self.emit = emit or (lambda name, payload: None)
        self.should_stop = should_stop or (lambda: False)
        self.weights_path = weights_path
        self.snapshot_seconds = snapshot_seconds
        self.min_gap = 1.0 / batch_hz
        self.bf16 = use_bf16(cfg.precision, self.device)
        self.samples_seen = 0
        self.train_seconds = 0.0
        self.stopped = False

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def run(self):
        cfg, dev = self.cfg, self.device
        torch.manual_seed(cfg.seed)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        images, labels = data.load(cfg.dataset, self.data_dir, train=True)
        if cfg.train_samples:
            images, labels = images[: cfg.train_samples], labels[: cfg.train_samples]
        test_images, test_labels = data.load(cfg.dataset, self.data_dir, train=False)
        images, labels = images.to(dev), labels.to(dev)
        test_images, test_labels = test_images.to(dev), test_labels.to(dev)
        model = build_model(cfg).to(dev)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(cfg, model.parameters())
        shuffle = torch.Generator().manual_seed(cfg.seed)
        steps = -(-len(images) // cfg.batch_size)
        self.emit(
            "run_started",
            {
                "device": dev.type,
                "precision": "bf16" if self.bf16 else "fp32",
                "params": param_count(cfg),
                "train_samples": len(images),
                "test_samples": len(test_images),
                "steps_per_epoch": steps,
                "epochs": cfg.epochs,
                "threads": torch.get_num_threads(),
            },
        )
        self.last_snapshot = time.perf_counter()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        # what training adds is what tells models apart: the torch runtime and the data set are shared
        self.memory_before = peak_memory_bytes(dev)
        for epoch in range(1, cfg.epochs + 1):
            loss, acc, seconds = self.train_epoch(model, optimizer, images, labels, shuffle, epoch, steps)
            if self.stopped:
                break
            started = time.perf_counter()
            test_loss, test_acc = evaluate(model, test_images, test_labels, cfg.dataset, self.autocast)
            eval_seconds = time.perf_counter() - started
            self.snapshot(model)
            self.emit(
                "epoch",
                {
                    "epoch": epoch,
                    "train_loss": loss,
                    "train_acc": acc,
                    "test_loss": test_loss,
                    "test_acc": test_acc,
                    "seconds": seconds,
                    "eval_seconds": eval_seconds,
                    "samples_seen": self.samples_seen,
                    "peak_memory_bytes": self.training_memory(),
                },
            )
        if not self.stopped:
            self.emit(
                "run_finished",
                {
                    "epochs": cfg.epochs,
                    "samples_seen": self.samples_seen,
                    "train_seconds": self.train_seconds,
                    "peak_memory_bytes": self.training_memory(),
                },
            )
        return model

    def training_memory(self):
        """How far training raised the peak memory above what the process held before its first batch."""
        return max(0, peak_memory_bytes(self.device) - self.memory_before)

    def snapshot(self, model):
        if self.weights_path:
            save_weights(model, self.weights_path)
        self.last_snapshot = time.perf_counter()

    def train_epoch(self, model, optimizer, images, labels, shuffle, epoch, steps):
        """One pass over the data; -> (mean loss, accuracy, seconds of training)."""
        cfg, dev = self.cfg, self.device
        model.train()
        zero = torch.zeros((), device=dev)
        # sums kept as tensors so a GPU is synchronised only when an event goes out
        epoch_loss, epoch_correct, window_loss, window_correct = zero.clone(), zero.clone(), zero.clone(), zero.clone()
        epoch_n = window_n = 0
        epoch_start = window_start = time.perf_counter()
        paused = 0.0  # time spent writing snapshots, kept out of the throughput
        for step, (xb, y) in enumerate(data.batches(images, labels, cfg.batch_size, shuffle), 1):
            if self.should_stop():
                self.stopped = True
                break
            with self.autocast():
                out = model(infer.prepare(xb, cfg.dataset)).float()
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if step % GRADIENT_EVERY == 1:
                names, means, maxes = gradient_flow(model)
            optimizer.step()
            n = len(y)
            correct = (out.detach().argmax(1) == y).sum()
            batch_loss = loss.detach() * n
            window_loss += batch_loss
            window_correct += correct
            epoch_loss += batch_loss
            epoch_correct += correct
            window_n += n
            epoch_n += n
            self.samples_seen += n
            if step % GRADIENT_EVERY == 1:
                self.emit(
                    "gradients",
                    {
                        "samples_seen": self.samples_seen,
                        "layers": names,
                        "mean_abs": means.tolist(),
                        "max_abs": maxes.tolist(),
                    },
                )
            now = time.perf_counter()
            if step == steps or now - window_start >= self.min_gap:
                self.emit(
                    "batch",
                    {
                        "epoch": epoch,
                        "step": step,
                        "steps": steps,
                        "samples_seen": self.samples_seen,
                        "loss": window_loss.item() / window_n,
                        "acc": window_correct.item() / window_n,
                        # over the epoch so far: a window can be one short last batch
                        "samples_per_s": epoch_n / max(now - epoch_start - paused, 1e-9),
                        "train_seconds": self.train_seconds + now - epoch_start - paused,
                    },
                )
                window_loss.zero_()
                window_correct.zero_()
                window_n = 0
                window_start = time.perf_counter()
            if self.weights_path and now - self.last_snapshot >= self.snapshot_seconds:
                before = time.perf_counter()
                self.snapshot(model)
                paused += time.perf_counter() - before
                window_start += time.perf_counter() - before
        seconds = time.perf_counter() - epoch_start - paused
        self.train_seconds += seconds
        n = max(epoch_n, 1)
        return epoch_loss.item() / n, epoch_correct.item() / n, seconds
