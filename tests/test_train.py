"""The engine alone: real MNIST, real short training, no server."""

import pytest

from cnn.config import validate
from cnn.train import Trainer


def train(data_dir, tmp_path=None, **fields):
    events = []
    cfg = validate({"train_samples": 2048, "epochs": 2, **fields})
    weights = str(tmp_path / "w.pt") if tmp_path else None
    Trainer(cfg, data_dir, "cpu", lambda name, p: events.append((name, p)), weights_path=weights).run()
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
        assert all(0 <= p[k] <= 1 for k in p if k.endswith("acc"))


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
    from cnn.runs import MALLOC_TUNABLES, worker_env

    assert worker_env({})["GLIBC_TUNABLES"] == MALLOC_TUNABLES
    assert worker_env({"GLIBC_TUNABLES": ""})["GLIBC_TUNABLES"] == MALLOC_TUNABLES
    assert "GLIBC_TUNABLES" not in worker_env({"MALLOC_TOP_PAD_": "0"})  # the older form of the same settings
    assert worker_env({"GLIBC_TUNABLES": "glibc.rtld.nns=8"})["GLIBC_TUNABLES"] == f"glibc.rtld.nns=8:{MALLOC_TUNABLES}"
    theirs = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "OMP_WAIT_POLICY": "ACTIVE"}
    assert worker_env(theirs) == theirs
