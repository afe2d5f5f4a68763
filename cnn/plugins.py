"""The trainer's side jobs, plugged in from outside: weight snapshots, memory readings, and the events
(run_started, batch, gradients, epoch, run_finished). Each is a small object whose on_<point>(trainer)
methods the Trainer calls at that point (cnn/train.py POINTS); they read the trainer's public state.

Per batch they must stay cheap: no sync with a GPU (no .item()) except when an event goes out, and no
allocation beyond the in-place sums.
"""

import os
import resource
import sys
import time
from contextlib import suppress

import torch

from . import events
from .models import learnable_layers

GRADIENT_EVERY = 50  # batches between two gradient-flow samples


def standard(emit=None, weights_path=None, snapshot_seconds=2.0, batch_hz=20.0):
    """What a run uses, in the order they are called at each point: gradients go out before the batch
    event of the same step; an epoch's snapshot is on disk, and memory read, before its epoch event.
    With a weights path, the best validation epoch is kept beside it as best.pt."""
    emit = emit or (lambda name, payload: None)
    memory = Memory()
    snapshots = []
    if weights_path:
        best = os.path.join(os.path.dirname(os.fspath(weights_path)), BEST_FILE)
        snapshots = [Snapshots(weights_path, snapshot_seconds), BestCheckpoint(best)]
    return [memory, Gradients(emit), BatchEvents(emit, batch_hz), *snapshots, RunEvents(emit, memory)]


BEST_FILE = "best.pt"


def save_weights(model, path, meta=None):
    """Write {"state_dict", "meta"} atomically: a reader sees the old file or the new one, never half of
    one. meta names the dataset, class names, shape and normalisation, so the file alone rebuilds and feeds
    the model. A write cut short (an exception, or SIGTERM turned into SystemExit) removes its temporary file."""
    state = {k: v.detach().to("cpu", memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}
    save_state(state, path, meta)


def save_state(state, path, meta):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save({"state_dict": state, "meta": meta}, tmp)
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):  # gone already when the replace succeeded
            os.remove(tmp)


def peak_memory_bytes(device):
    """The process's high-water mark: CUDA memory allocated on a GPU; on a CPU, resident memory (Linux's
    VmHWM, which reset_peak() can lower, else ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def reset_peak():
    """Hands freed heap back to the system and restarts the resident high-water mark at what is held now
    (Linux only), so that what the fast-form timing touched before training is not counted as training's."""
    import ctypes
    import gc

    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def gradient_flow(model):
    """Mean and max |grad| of each learnable layer's weights, as tensors (no sync)."""
    layers = [(name, m) for name, m in learnable_layers(model) if m.weight.grad is not None]
    grads = [module.weight.grad.detach().abs() for _, module in layers]
    return [name for name, _ in layers], torch.stack([g.mean() for g in grads]), torch.stack([g.max() for g in grads])


class Memory:
    """What training adds is what tells models apart: the torch runtime and the data set are shared, so
    the reading is how far the peak rose above what the process held before its first batch."""

    def on_train_start(self, t):
        if t.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(t.device)
        else:
            reset_peak()
        self.before = peak_memory_bytes(t.device)

    def grown(self, device):
        return max(0, peak_memory_bytes(device) - self.before)


class Snapshots:
    """The weights every `seconds` while training and after every epoch (so predictions can follow the run);
    the time spent writing goes to t.paused, out of the throughput and the batch throttle's clock."""

    def __init__(self, path, seconds=2.0):
        self.path, self.seconds = path, seconds

    def on_train_start(self, t):
        self.last = time.perf_counter()

    def on_batch_end(self, t):
        if t.now - self.last >= self.seconds:
            before = time.perf_counter()
            self.save(t)  # sets self.last to when it ended
            t.paused += self.last - before

    def on_epoch_end(self, t):
        self.save(t)

    def on_train_end(self, t):
        if t.best_epoch is not None and not t.stopped:
            self.save(t)  # the trainer restored the best epoch: the run's weights are the chosen ones

    def save(self, t):
        save_weights(t.model, self.path, t.dataset.meta())
        self.last = time.perf_counter()


class BestCheckpoint:
    """With a validation share: the weights of the epoch with the best validation score, as best.pt."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, t):
        if t.improved:
            save_state(t.best_state, self.path, {**t.dataset.meta(), "epoch": t.epoch})


class Gradients:
    """Weight-gradient sizes per layer every `every` batches, read between backward and the optimizer step."""

    def __init__(self, emit, every=GRADIENT_EVERY):
        self.emit, self.every, self.flow = emit, every, None

    def on_after_backward(self, t):
        if t.step % self.every == 1:
            self.flow = gradient_flow(t.model)

    def on_batch_end(self, t):
        if self.flow is None:
            return
        names, means, maxes = self.flow
        self.flow = None
        payload = {
            "samples_seen": t.samples_seen,
            "layers": names,
            "mean_abs": means.tolist(),
            "max_abs": maxes.tolist(),
        }
        self.emit(events.GRADIENTS, payload)


class BatchEvents:
    """At most `hz` batch events a second, always an epoch's last batch; loss and acc are means over the
    batches since the previous event. The sums stay tensors, so a GPU syncs only when an event goes out."""

    def __init__(self, emit, hz=20.0):
        self.emit, self.min_gap = emit, 1.0 / hz

    def on_epoch_start(self, t):
        zero = torch.zeros((), device=t.device)
        self.loss, self.correct, self.n = zero.clone(), zero.clone(), 0
        self.start = 0.0  # the window's start on the epoch's training clock

    def on_batch_end(self, t):
        self.loss += t.batch_loss
        self.correct += t.batch_correct
        self.n += t.batch_n
        seconds = t.now - t.epoch_start - t.paused  # the epoch's training so far
        if t.step != t.steps and seconds - self.start < self.min_gap:
            return
        payload = {
            "epoch": t.epoch,
            "step": t.step,
            "steps": t.steps,
            "samples_seen": t.samples_seen,
            "loss": self.loss.item() / self.n,
            "acc": self.correct.item() / self.n,
            # over the epoch so far: a window can be one short last batch
            "samples_per_s": t.epoch_samples / max(seconds, 1e-9),
            "train_seconds": t.train_seconds + seconds,
            "lr": t.lr,
        }
        self.emit(events.BATCH, payload)
        self.loss.zero_()
        self.correct.zero_()
        self.n = 0
        self.start = time.perf_counter() - t.epoch_start - t.paused  # sending is not training


class RunEvents:
    """run_started when the data is loaded, epoch after each tested epoch, run_finished unless stopped."""

    def __init__(self, emit, memory):
        self.emit, self.memory = emit, memory

    def on_train_start(self, t):
        payload = {
            "device": t.device.type,
            "precision": "bf16" if t.bf16 else "fp32",
            "fast_form": t.fast_form,
            "params": sum(p.numel() for p in t.model.parameters()),
            "train_samples": len(t.images),
            "validation_samples": len(t.val_images),
            "test_samples": len(t.test_images),
            "dataset": t.dataset.name,
            "classes": t.dataset.classes,
            "shape": t.dataset.shape,
            "steps_per_epoch": t.steps,
            "epochs": t.cfg.epochs,
            "threads": torch.get_num_threads(),
        }
        self.emit(events.RUN_STARTED, payload)

    def on_epoch_end(self, t):
        payload = {
            "epoch": t.epoch,
            "train_loss": t.train_loss,
            "train_acc": t.train_acc,
            "test_loss": t.test_loss,
            "test_acc": t.test_acc,
            "val_loss": t.val_loss,
            "val_acc": t.val_acc,
            "best_epoch": t.best_epoch,
            "lr": t.lr,
            "seconds": t.epoch_seconds,
            "eval_seconds": t.eval_seconds,
            "samples_seen": t.samples_seen,
            "peak_memory_bytes": self.memory.grown(t.device),
        }
        self.emit(events.EPOCH, payload)

    def on_train_end(self, t):
        if t.stopped:
            return
        payload = {
            "epochs": t.epoch,
            "best_epoch": t.best_epoch,
            "early_stopped": t.early_stopped,
            # the test accuracy of the weights the run keeps: the best epoch's, or the last one's
            "test_acc": t.best_test_acc if t.best_epoch is not None else getattr(t, "test_acc", None),
            "samples_seen": t.samples_seen,
            "train_seconds": t.train_seconds,
            "peak_memory_bytes": self.memory.grown(t.device),
        }
        self.emit(events.RUN_FINISHED, payload)
