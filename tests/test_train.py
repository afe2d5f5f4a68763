"""The engine alone: real MNIST, real short training, no server."""

import math

import pytest
import torch

from cnn.config import validate
from cnn.plugins import standard
from cnn.train import Trainer


def train(data_dir, tmp_path=None, **fields):
    events = []
    cfg = validate({"train_samples": 2048, "epochs": 2, **fields})
    weights = str(tmp_path / "w.pt") if tmp_path else None
    Trainer(cfg, data_dir, "cpu", standard(lambda name, p: events.append((name, p)), weights)).run()
    return events


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    return train(data_dir, tmp_path_factory.mktemp("w"))


def of(events, name):
    return [p for n, p in events if n == name]


def test_a_short_run_lowers_the_loss(run):
    batches, epochs = of(run, "batch"), of(run, "epoch")
    assert batches[-1]["loss"] < 0.6 * batches[0]["loss"]
    assert epochs[1]["test_loss"] < epochs[0]["test_loss"]
    assert epochs[1]["test_acc"] > 0.8


def test_events_arrive_in_order_with_fractions(run):
    names = [n for n, _ in run if n not in ("batch", "gradients")]
    assert names == ["run_started", "epoch", "epoch", "run_finished"]
    for p in of(run, "batch") + of(run, "epoch"):
        assert all(0 <= p[k] <= 1 for k in p if k.endswith("acc") and p[k] is not None)


def test_every_epoch_ends_with_its_last_batch(run):
    batches = of(run, "batch")
    steps = of(run, "run_started")[0]["steps_per_epoch"]
    ends = [b for b in batches if b["step"] == steps]
    assert [b["epoch"] for b in ends] == [1, 2]
    assert batches[-1]["samples_seen"] == 2 * 2048


def test_same_seed_same_run(data_dir):
    first = of(train(data_dir, epochs=1, train_samples=512), "epoch")[0]
    second = of(train(data_dir, epochs=1, train_samples=512), "epoch")[0]
    assert first["test_loss"] == pytest.approx(second["test_loss"], rel=1e-4)


def test_gradient_flow_covers_every_layer(run):
    grads = of(run, "gradients")
    assert grads and grads[0]["layers"] == ["conv1", "conv2", "conv3", "fc"]
    assert all(m > 0 for g in grads for m in g["mean_abs"])


def test_batch_events_are_throttled_but_keep_each_epochs_last_batch(data_dir):
    events = of(train(data_dir, train_samples=1024, epochs=1, batch_size=4, channels="4"), "batch")
    assert events[-1]["step"] == events[-1]["steps"] == 256
    gaps = [b["train_seconds"] - a["train_seconds"] for a, b in zip(events, events[1:-1], strict=False)]
    assert all(gap >= 0.045 for gap in gaps)  # at most about 20 a second, however fast the batches


def test_bf16_autocast_trains(data_dir):
    run = train(data_dir, train_samples=512, epochs=1, precision="bf16", channels="4")
    assert of(run, "run_started")[0]["precision"] == "bf16"
    assert of(run, "epoch")[0]["test_acc"] > 0.3


def test_workers_keep_freed_memory_but_a_users_own_malloc_tunables_win():
    from cnn.workers import MALLOC_TUNABLES, worker_env

    assert worker_env({})["GLIBC_TUNABLES"] == MALLOC_TUNABLES
    assert worker_env({"GLIBC_TUNABLES": ""})["GLIBC_TUNABLES"] == MALLOC_TUNABLES
    assert "GLIBC_TUNABLES" not in worker_env({"MALLOC_TOP_PAD_": "0"})  # the older form of the same settings
    assert worker_env({"GLIBC_TUNABLES": "glibc.rtld.nns=8"})["GLIBC_TUNABLES"] == f"glibc.rtld.nns=8:{MALLOC_TUNABLES}"
    theirs = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "OMP_WAIT_POLICY": "ACTIVE"}
    assert worker_env(theirs) == theirs


class Points:
    """A plug-in with every callback point: records (point, epoch, step) and what the trainer exposes."""

    def __init__(self):
        self.calls, self.seen, self.paused = [], [], []

    def __getattr__(self, point):
        if not point.startswith("on_"):
            raise AttributeError(point)
        return lambda t: self.calls.append((point, t.epoch, t.step))

    def on_batch_end(self, t):
        self.calls.append(("on_batch_end", t.epoch, t.step))
        self.seen.append((t.samples_seen, t.batch_n))

    def on_epoch_end(self, t):
        self.calls.append(("on_epoch_end", t.epoch, t.step))
        self.paused.append(t.paused)


def test_a_plugin_is_called_at_each_point_in_order_and_reads_the_trainers_state(data_dir):
    points, events = Points(), []
    cfg = validate({"train_samples": 256, "epochs": 2, "batch_size": 64, "channels": "4"})
    trainer = Trainer(cfg, data_dir, "cpu", [*standard(lambda name, p: events.append((name, p))), points])
    trainer.run()
    per_batch = [("on_after_backward", e, s) for e in (1, 2) for s in range(1, 5)]
    expected = [("on_train_start", 0, 0)]
    for epoch in (1, 2):
        batches = [(p, e, s) for p, e, s in per_batch if e == epoch]
        expected += [("on_epoch_start", epoch, 0)]
        expected += [c for b in batches for c in (b, ("on_batch_end", epoch, b[2]))]
        expected += [("on_epoch_end", epoch, 4)]
    assert points.calls == expected + [("on_train_end", 2, 4)]
    assert points.seen == [(64 * i, 64) for i in range(1, 9)]
    assert points.paused == [0.0, 0.0]  # no weights path: no snapshots, nothing kept out
    (finished,) = of(events, "run_finished")
    assert finished["train_seconds"] == trainer.train_seconds and finished["samples_seen"] == trainer.samples_seen


def test_with_no_gap_left_only_each_epochs_last_batch_goes_out_averaged_over_the_epoch(data_dir):
    events = []
    cfg = validate({"train_samples": 512, "epochs": 2, "batch_size": 32, "channels": "4"})
    Trainer(cfg, data_dir, "cpu", standard(lambda name, p: events.append((name, p)), batch_hz=1e-9)).run()
    batches, epochs = of(events, "batch"), of(events, "epoch")
    assert [(b["epoch"], b["step"]) for b in batches] == [(1, 16), (2, 16)]
    for batch, epoch in zip(batches, epochs, strict=True):  # one window: the whole epoch
        assert batch["loss"] == pytest.approx(epoch["train_loss"]) and batch["acc"] == pytest.approx(epoch["train_acc"])


def test_snapshots_are_written_while_training_and_their_time_kept_out(data_dir, tmp_path):
    points, events, path = Points(), [], tmp_path / "w.pt"
    cfg = validate({"train_samples": 256, "epochs": 1, "batch_size": 64, "channels": "4"})

    def emit(name, payload):
        events.append((name, payload))

    trainer = Trainer(cfg, data_dir, "cpu", [*standard(emit, path, snapshot_seconds=0), points])
    model = trainer.run()  # a snapshot after every batch, and one after the epoch
    assert points.paused[0] > 0  # writing took time, and it was not counted as training
    (epoch,) = of(events, "epoch")
    assert epoch["seconds"] == trainer.epoch_seconds
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())  # the last one: after the epoch


def test_a_stopped_trainer_sends_no_epoch_and_no_run_finished(data_dir):
    points, events = Points(), []
    cfg = validate({"train_samples": 512, "epochs": 2, "batch_size": 64, "channels": "4"})
    trainer = Trainer(cfg, data_dir, "cpu", [*standard(lambda n, p: events.append((n, p))), points])
    trainer.should_stop = lambda: trainer.step == 3  # asked before each batch: three are trained
    trainer.run()
    names = {n for n, _ in events}
    assert "run_started" in names and "epoch" not in names and "run_finished" not in names
    assert points.calls[-1] == ("on_train_end", 1, 3) and not [c for c in points.calls if c[0] == "on_epoch_end"]


class Sabotage:
    """From epoch 2 on, every weight is zeroed after each step, so every score drops; and the test set's
    labels all become class 0, which a zeroed model (equal logits, argmax 0) gets right: were the test set to
    choose the checkpoint, it would choose a sabotaged epoch."""

    def on_train_start(self, t):
        t.test_labels = torch.zeros_like(t.test_labels)

    def on_batch_end(self, t):
        if t.epoch >= 2:
            with torch.no_grad():
                for p in t.model.parameters():
                    p.zero_()


def test_validation_picks_the_best_epoch_and_early_stopping_ends_the_run(data_dir, tmp_path):
    events = []
    cfg = validate({"train_samples": 2000, "epochs": 5, "validation": 0.25, "patience": 2, "lr": 1e-3})
    plugins = [*standard(lambda name, p: events.append((name, p)), str(tmp_path / "weights.pt")), Sabotage()]
    trainer = Trainer(cfg, data_dir, "cpu", plugins)
    model = trainer.run()
    started, epochs, (finished,) = of(events, "run_started")[0], of(events, "epoch"), of(events, "run_finished")
    assert (started["train_samples"], started["validation_samples"]) == (1500, 500)
    assert [e["epoch"] for e in epochs] == [1, 2, 3]  # epochs 2 and 3 were no better: patience 2 ended it
    assert finished["early_stopped"] and finished["epochs"] == 3 and finished["best_epoch"] == 1
    assert all(e["best_epoch"] == 1 for e in epochs)
    assert epochs[0]["val_acc"] > 0.5 > max(e["val_acc"] for e in epochs[1:])
    assert epochs[0]["test_acc"] < min(e["test_acc"] for e in epochs[1:])  # the test set would have chosen wrong
    # the run's weights are the chosen epoch's, on disk as weights.pt and best.pt
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    final = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert best["meta"]["epoch"] == 1
    for key, value in model.state_dict().items():
        assert torch.equal(best["state_dict"][key], value) and torch.equal(final["state_dict"][key], value)
    # measured again, the kept model gives epoch 1's validation accuracy
    from cnn.train import evaluate

    _, acc = evaluate(model, trainer.val_images, trainer.val_labels, trainer.norm, trainer.autocast)
    assert acc == pytest.approx(epochs[0]["val_acc"])


def test_without_validation_nothing_is_held_out_and_the_last_epoch_is_kept(run):
    started, (finished,) = of(run, "run_started")[0], of(run, "run_finished")
    assert started["validation_samples"] == 0 and started["train_samples"] == 2048
    assert finished["best_epoch"] is None and not finished["early_stopped"]
    assert all(e["val_acc"] is None for e in of(run, "epoch"))


def test_schedules_move_the_rate_as_planned(data_dir):
    from cnn.schedules import planned_rates

    events = train(data_dir, None, schedule="cosine", epochs=2, train_samples=640, lr=0.01)
    rates = [e["lr"] for e in of(events, "epoch")]  # the rate of each epoch's last step, 10 steps an epoch
    plan = planned_rates(validate({"schedule": "cosine", "epochs": 2, "lr": 0.01}))
    assert plan[0] == [0, 0.01] and plan[-1][0] == 2 and plan[-1][1] < 1e-6
    assert rates[0] == pytest.approx(0.005 * (1 + math.cos(math.pi * 9 / 20)))
    assert rates[1] < 1e-4  # cosine ends near zero
    step = train(data_dir, None, schedule="step", epochs=3, train_samples=640, lr=0.01)
    assert [e["lr"] for e in of(step, "epoch")] == pytest.approx([0.01, 0.001, 0.0001])
    for epochs in (4, 5, 10):  # two drops, whatever the count: after a third of the run and after two thirds
        rates = sorted({lr for _, lr in planned_rates(validate({"schedule": "step", "epochs": epochs, "lr": 0.01}))})
        assert rates == pytest.approx([0.0001, 0.001, 0.01])


def test_augmentation_crops_and_flips_whole_batches():
    from cnn.augment import augment

    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    generator = torch.Generator().manual_seed(0)
    seen = {augment(images, 2, True, generator)[0, 0].tolist().__repr__() for _ in range(200)}
    assert len(seen) > 20  # many shifts and flips
    for _ in range(50):
        out = augment(images, 2, True, generator)
        assert out.shape == images.shape and out.dtype == torch.uint8
        for i in range(2):  # a window of the zero-padded image, maybe mirrored: its non-zero pixels are the image's
            kept = out[i][out[i] > 0]
            assert set(kept.tolist()) <= set(images[i].flatten().tolist())
    assert torch.equal(augment(images, 0, False, generator), images)


def test_a_validation_share_of_a_tiny_set_holds_out_one_image(data_dir):
    events = train(data_dir, None, train_samples=4, validation=0.1, patience=1, channels=[4], batch_size=2, epochs=3)
    started, finished = of(events, "run_started")[0], of(events, "run_finished")[0]
    assert (started["train_samples"], started["validation_samples"]) == (3, 1)
    assert finished["best_epoch"] is not None
