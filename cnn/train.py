"""The training loop. It trains, exposes its state and fires callbacks at fixed points, as minGPT's
trainer does; events, weight snapshots and memory readings plug in from outside (cnn/plugins.py).
It knows nothing of sockets.

emit(name, payload) receives: run_started, batch, gradients, epoch, run_finished.
Payloads are flat dicts of plain numbers (lists of numbers for gradients).
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from . import data, datasets, forms, infer, split
from .augment import augment
from .models import build_model
from .schedules import make_scheduler

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
    """Weight decay is decoupled from the gradient for every optimizer (AdamW's rule; with 0 it is Adam)."""
    params = list(params)
    wd = cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=wd)
    # the fused kernel updates every tensor in one pass instead of a loop of small ops
    fused = params[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=wd, fused=fused)


def split_validation(images, labels, share, seed):
    """-> (train images, train labels, validation images, validation labels): a seeded share of the
    training set held out; the test set is never touched."""
    n_val = round(len(images) * share)
    if share and not n_val and len(images) >= 2:  # a share asked for is never silently nothing
        n_val = 1
    if not n_val:
        return images, labels, images[:0], labels[:0]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    keep, held = order[n_val:].sort().values, order[:n_val].sort().values
    return images[keep], labels[keep], images[held], labels[held]


def has_batchnorm(model):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def has_dropout(model):
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def evaluate(model, images, labels, norm, autocast):
    """-> (mean loss, accuracy) over the whole set."""
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start, out in infer.logits(model, images, norm, autocast, EVAL_BATCH):
        y = labels[start : start + len(out)]
        loss_sum += F.cross_entropy(out, y, reduction="sum")
        correct += (out.argmax(1) == y).sum()
    return loss_sum.item() / len(images), correct.item() / len(images)


class Trainer:
    """Trains one model from a RunConfig. Callbacks get the trainer and read its state: cfg, device, model,
    optimizer, epoch, step, steps (per epoch), samples_seen, train_seconds (before this epoch), epoch_start
    and paused (side jobs' seconds this epoch, kept out of the throughput), now (the batch's end), the
    batch's batch_loss (summed), batch_correct (tensors) and batch_n, lr (the rate of the step just taken),
    and after an epoch train_loss, train_acc, epoch_seconds, test_loss, test_acc, eval_seconds, val_loss and
    val_acc (None without a validation share), best_epoch and improved; early_stopped at the end. The data:
    dataset (cnn.datasets.Loaded), norm, images/labels (training), val_images, test_images.

    With a validation share, the epoch with the best validation accuracy is the run's model: its weights
    are restored at the end (and kept as the best checkpoint by a plug-in). The test set only measures.

    Side jobs plug in from outside: `plugins` are objects with on_<point>(trainer) methods, called in
    the order given (a run's worker passes plugins.standard(emit, weights_path): its events, weight
    snapshots and memory readings). With none, the trainer just trains."""

    def __init__(
        self,
        cfg,
        data_dir,
        device="auto",
        plugins=(),
        should_stop=None,
        cache_dir=None,
        autotune=True,
        dataset=None,
        data_parallel=False,
    ):
        self.cfg, self.data_dir, self.cache_dir, self.autotune = cfg, data_dir, cache_dir, autotune
        self.preloaded = dataset  # cfg's dataset, opened already by a warm worker (cnn/worker.py), or None
        # data_parallel, on a CPU with several threads allotted: "on" trains as one process per thread
        # (cnn/parallel.py), "auto" where that times faster and pays for its start-up (cnn/split.py), "off" never
        self.data_parallel = split.setting(data_parallel)
        self.group, self.ranks, self.declined = None, [], False
        self.fixed_form = None  # a data-parallel rank's form: rank 0's choice, not timed again
        self.eval_threads = None  # rank 0 of a data-parallel run evaluates on every core (the others wait)
        self.device = pick_device(device)
        self.should_stop = should_stop or (lambda: False)
        self.bf16 = use_bf16(cfg.precision, self.device)  # until setup() has chosen the fast form
        self.fast_form = None
        self.epoch = self.step = self.steps = self.samples_seen = 0
        self.train_seconds = self.paused = 0.0
        self.stopped = self.early_stopped = self.improved = False
        self.best_epoch, self.best_score, self.best_state = None, None, None
        self.val_loss = self.val_acc = self.best_test_acc = None
        self.scheduler, self.drop_single = None, False
        self.lr = cfg.lr
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
        self.dataset = found = self.preloaded or datasets.open_dataset(
            cfg.dataset, self.data_dir, self.cache_dir, cfg.image_size
        )
        self.norm = found.norm
        images, labels = found.train_images, found.train_labels
        if cfg.train_samples:
            images, labels = images[: cfg.train_samples], labels[: cfg.train_samples]
        images, labels, val_images, val_labels = split_validation(images, labels, cfg.validation, cfg.seed)
        if not len(images):
            raise ValueError("The training set is empty after the validation share; lower validation")
        self.images, self.labels = images.to(dev), labels.to(dev)
        self.val_images, self.val_labels = val_images.to(dev), val_labels.to(dev)
        self.test_images, self.test_labels = found.test_images.to(dev), found.test_labels.to(dev)
        classes = len(found.classes)
        cache = self.cache_dir or datasets.default_cache_dir()
        allotted = torch.get_num_threads()
        self.fast_form = self.fixed_form or forms.choose(
            cfg, found.shape, classes, self.images, self.labels, self.norm, dev, cache, native_bf16(dev), self.autotune
        )
        self.bf16 = self.fast_form["precision"] == "bf16"
        if dev.type == "cpu":
            torch.set_num_threads(self.fast_form["threads"])  # fewer than allotted where that timed faster
        torch.manual_seed(cfg.seed)  # the run's weights do not depend on whether a timing ran
        model = build_model(cfg, found.shape, classes, form=self.fast_form["form"]).to(dev)
        self.model = model.to(memory_format=torch.channels_last) if dev.type == "cpu" else model
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.shuffle = torch.Generator().manual_seed(cfg.seed)
        self.augment_rng = torch.Generator(dev).manual_seed(cfg.seed + 1)
        # batch norm cannot train on a batch of one image: a last batch of one is skipped
        self.drop_single = has_batchnorm(self.model) and len(self.images) % cfg.batch_size == 1
        self.steps = -(-len(self.images) // cfg.batch_size) - self.drop_single
        if not self.steps:
            raise ValueError("batch norm needs at least 2 training images a batch; raise train_samples")
        self.scheduler = make_scheduler(cfg, self.optimizer, self.steps)
        wanted = self.data_parallel != "off" and self.fixed_form is None
        if wanted and dev.type == "cpu" and allotted > 1:
            # each process's batch statistics, or its dropout masks (drawn alike from the one seed), would
            # make the function differ from one process's
            why = "batch norm" if has_batchnorm(self.model) else "dropout" if has_dropout(self.model) else None
            if why:
                self.fast_form = {**self.fast_form, "data_parallel": 1, "why": why}
            elif self.data_parallel == "auto":
                facts = split.choose(self, allotted, cache)
                self.fast_form = {**self.fast_form, "split": facts, "data_parallel": allotted if self.group else 1}
            else:
                self.start_ranks(allotted, cache)
        probe = (self.fixed_form or {}).get("probe_steps")
        if probe:  # a rank of a run that times its split: rank 0 then says whether the ranks go on
            split.split_rate(self, probe)
            self.declined = not self.group.decide(False)

    def start_ranks(self, world, cache, probe_steps=None):
        """Rank 0 of a data-parallel run: the other ranks train beside it, a thread each, as does this one.
        probe_steps: they first time the split with rank 0 (cnn/split.py), which may then end them."""
        from . import parallel

        self.fast_form = {**self.fast_form, "threads": 1, "data_parallel": world}
        spec = {"config": self.cfg.to_dict(), "data_dir": str(self.data_dir), "cache_dir": str(cache)}
        form = {**self.fast_form, "probe_steps": probe_steps}
        self.group, self.ranks = parallel.start(world, {**spec, "form": form}, parallel.floats(self.model))
        self.eval_threads = world  # the other ranks wait while rank 0 evaluates: it may use every core
        torch.set_num_threads(1)

    def stop_ranks(self, threads):
        """Rank 0, the split timed slower: the other ranks end and this process trains at `threads`."""
        from . import parallel

        parallel.end(self.ranks, self.group)
        self.group, self.ranks, self.eval_threads = None, [], None
        self.fast_form = {**self.fast_form, "threads": threads, "data_parallel": 1}
        torch.set_num_threads(threads)

    def run(self):
        try:
            self.setup()
            if self.declined:  # a rank whose run chose one process after timing the split
                return self.model
            self.fire("on_train_start")
            for epoch in range(1, self.cfg.epochs + 1):
                self.train_epoch(epoch)
                if self.stopped or self.epoch_end():
                    break
            if self.best_state is not None and not self.stopped:
                self.model.load_state_dict(self.best_state)  # the chosen epoch is the run's model
            self.fire("on_train_end")
        finally:
            if self.ranks:  # rank 0: the others end with the run, however it ends
                from . import parallel

                parallel.end(self.ranks, self.group)
        return self.model

    def epoch_end(self):
        """Measures, reports and decides whether the run ends early. -> True to end it. A data-parallel
        rank other than 0 only learns rank 0's decision."""
        if self.group is not None and self.group.rank:
            return self.group.decide(False)
        started = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(self.eval_threads or threads)
        try:
            self.measure()
        finally:
            torch.set_num_threads(threads)
        self.eval_seconds = time.perf_counter() - started
        self.fire("on_epoch_end")
        patience, watched = self.cfg.patience, self.best_epoch is not None
        if patience and watched and self.epoch - self.best_epoch >= patience and self.epoch < self.cfg.epochs:
            self.early_stopped = True
        if self.group is not None:
            self.group.decide(self.early_stopped)
        return self.early_stopped

    def measure(self):
        """Test every epoch (reported, never used to choose); with a validation share, keep the best epoch."""
        model, norm, autocast = self.model, self.norm, self.autocast
        self.test_loss, self.test_acc = evaluate(model, self.test_images, self.test_labels, norm, autocast)
        self.improved = False
        if not len(self.val_images):
            return
        self.val_loss, self.val_acc = evaluate(model, self.val_images, self.val_labels, norm, autocast)
        score = (self.val_acc, -self.val_loss)  # accuracy first; the loss breaks a tie
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch, self.improved = score, self.epoch, True
            self.best_test_acc = self.test_acc
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

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
        crop, flip = cfg.augment.crop, cfg.augment.flip
        group = self.group
        for step, (xb, y) in enumerate(data.batches(self.images, self.labels, cfg.batch_size, self.shuffle), 1):
            if group is None and self.should_stop():  # data-parallel ranks learn of a stop with the gradients
                self.stopped = True
                break
            if step > self.steps:  # the skipped last batch of one image
                break
            self.step = step
            if crop or flip:  # every rank draws the whole batch's crops and flips, then takes its share
                xb = augment(xb, crop, flip, self.augment_rng)
            n = self.batch_n = len(y)
            if group is not None:
                xb, y = xb[group.shard(n)], y[group.shard(n)]
            with self.autocast():
                out = model(infer.prepare(xb, self.norm)).float()
            # a rank's share of the global batch's mean: the ranks' gradients sum to one process's
            loss = F.cross_entropy(out, y) if group is None else F.cross_entropy(out, y, reduction="sum") / n
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.batch_correct = (out.detach().argmax(1) == y).sum()
            self.batch_loss = loss.detach() * n
            if group is not None:
                stop = self.should_stop()
                self.batch_loss, self.batch_correct, stop = group.reduce(
                    model.parameters(), self.batch_loss, self.batch_correct, stop
                )
                if stop:
                    self.stopped = True
                    break
            self.fire("on_after_backward")
            optimizer.step()
            if self.scheduler is not None:
                self.lr = optimizer.param_groups[0]["lr"]  # the rate this step used
                self.scheduler.step()
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
