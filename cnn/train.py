"""The training loop. It trains, exposes its state and fires callbacks at fixed points, as minGPT's
trainer does; events, weight snapshots and memory readings plug in from outside (cnn/plugins.py).
It knows nothing of sockets.

emit(name, payload) receives: run_started, batch, gradients, epoch, run_finished.
Payloads are flat dicts of plain numbers (lists of numbers for gradients).
"""

import time

import torch
import torch.nn.functional as F

from . import data, infer
from .models import build_model

EVAL_BATCH = 1000
# where callbacks run, in this order: once, then per epoch (per batch within it), then once
POINTS = ("on_train_start", "on_epoch_start", "on_after_backward", "on_batch_end", "on_epoch_end", "on_train_end")


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


class Trainer:
    """Trains one model from a RunConfig. Callbacks get the trainer and read its state: cfg, device, model,
    optimizer, epoch, step, steps (per epoch), samples_seen, train_seconds (before this epoch), epoch_start
    and paused (side jobs' seconds this epoch, kept out of the throughput), now (the batch's end), the
    batch's batch_loss (summed), batch_correct (tensors) and batch_n, and after an epoch train_loss,
    train_acc, epoch_seconds, test_loss, test_acc, eval_seconds.

    Side jobs plug in from outside: `plugins` are objects with on_<point>(trainer) methods, called in
    the order given (a run's worker passes plugins.standard(emit, weights_path): its events, weight
    snapshots and memory readings). With none, the trainer just trains."""

    def __init__(self, cfg, data_dir, device="auto", plugins=(), should_stop=None):
        self.cfg, self.data_dir = cfg, data_dir
        self.device = pick_device(device)
        self.should_stop = should_stop or (lambda: False)
        self.bf16 = use_bf16(cfg.precision, self.device)
        self.epoch = self.step = self.steps = self.samples_seen = 0
        self.train_seconds = self.paused = 0.0
        self.stopped = False
        self.callbacks = {point: [] for point in POINTS}
        for plugin in plugins:
            self.plug(plugin)

    def add_callback(self, point, callback):
        self.callbacks[point].append(callback)

    def plug(self, plugin):
        """Registers each of the plugin's on_<point> methods."""
        for point in POINTS:
            if hasattr(plugin, point):
                self.add_callback(point, getattr(plugin, point))
        return plugin

    def fire(self, point):
        for callback in self.callbacks[point]:
            callback(self)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def setup(self):
        """Data on the device, the model, its optimizer and the shuffling generator."""
        cfg, dev = self.cfg, self.device
        torch.manual_seed(cfg.seed)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        images, labels = data.load(cfg.dataset, self.data_dir, train=True)
        if cfg.train_samples:
            images, labels = images[: cfg.train_samples], labels[: cfg.train_samples]
        test_images, test_labels = data.load(cfg.dataset, self.data_dir, train=False)
        self.images, self.labels = images.to(dev), labels.to(dev)
        self.test_images, self.test_labels = test_images.to(dev), test_labels.to(dev)
        model = build_model(cfg).to(dev)
        self.model = model.to(memory_format=torch.channels_last) if dev.type == "cpu" else model
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.shuffle = torch.Generator().manual_seed(cfg.seed)
        self.steps = -(-len(self.images) // cfg.batch_size)

    def run(self):
        self.setup()
        self.fire("on_train_start")
        for epoch in range(1, self.cfg.epochs + 1):
            self.train_epoch(epoch)
            if self.stopped:
                break
            started = time.perf_counter()
            self.test_loss, self.test_acc = evaluate(
                self.model, self.test_images, self.test_labels, self.cfg.dataset, self.autocast
            )
            self.eval_seconds = time.perf_counter() - started
            self.fire("on_epoch_end")
        self.fire("on_train_end")
        return self.model

    def train_epoch(self, epoch):
        """One pass over self.images in self.steps batches; sets train_loss, train_acc, epoch_seconds."""
        cfg, model, optimizer = self.cfg, self.model, self.optimizer
        self.epoch, self.step = epoch, 0
        model.train()
        loss_sum = torch.zeros((), device=self.device)  # sums kept as tensors: no sync per batch
        correct_sum = loss_sum.clone()
        self.epoch_samples, self.paused = 0, 0.0
        self.epoch_start = time.perf_counter()
        self.fire("on_epoch_start")
        for step, (xb, y) in enumerate(data.batches(self.images, self.labels, cfg.batch_size, self.shuffle), 1):
            if self.should_stop():
                self.stopped = True
                break
            self.step = step
            with self.autocast():
                out = model(infer.prepare(xb, cfg.dataset)).float()
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.fire("on_after_backward")
            optimizer.step()
            n = self.batch_n = len(y)
            self.batch_correct = (out.detach().argmax(1) == y).sum()
            self.batch_loss = loss.detach() * n
            loss_sum += self.batch_loss
            correct_sum += self.batch_correct
            self.epoch_samples += n
            self.samples_seen += n
            self.now = time.perf_counter()
            self.fire("on_batch_end")
        self.epoch_seconds = time.perf_counter() - self.epoch_start - self.paused
        self.train_seconds += self.epoch_seconds
        n = max(self.epoch_samples, 1)
        self.train_loss, self.train_acc = loss_sum.item() / n, correct_sum.item() / n
