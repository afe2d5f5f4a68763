"""Data-parallel training on CPU processes (cnn/parallel.py): the same weights as one process on the same
global batches, a stop ends every rank, and a rank that dies fails the run with a sentence, leaving none. Under
"auto" (cnn/split.py) the split is timed once and kept, and so is a start of the ranks that failed."""

import datetime
import errno
import json
import os
import re
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import server_in
from playwright.sync_api import expect
from test_server import worker_pid

from cnn import forms, parallel, split
from cnn.config import validate
from cnn.train import Trainer

# crop and flip: every rank must draw the same augmentation as one process would
RUN = {"channels": [4, 8], "batch_size": 64, "train_samples": 640, "epochs": 2, "precision": "fp32", "seed": 3}
RUN_AUGMENTED = {**RUN, "augment": {"crop": 2, "flip": True}}


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def trained(data_dir, tmp_path, fields, data_parallel, plugins=(), should_stop=None):
    cfg = validate(fields)
    trainer = Trainer(
        cfg, data_dir, "cpu", plugins, should_stop, cache_dir=tmp_path, autotune=False, data_parallel=data_parallel
    )
    trainer.run()
    return trainer


def test_two_processes_learn_the_weights_one_process_learns(data_dir, tmp_path, threads):
    threads(1)
    one = trained(data_dir, tmp_path, RUN_AUGMENTED, data_parallel=False)
    threads(2)
    two = trained(data_dir, tmp_path, RUN_AUGMENTED, data_parallel=True)
    assert two.fast_form["data_parallel"] == 2
    if parallel.SHARED_EXCHANGE:  # each step's gradients went through shared memory, not gloo
        assert two.group.exchange.step == 2 * 10
    for key, weight in one.model.state_dict().items():
        assert torch.allclose(weight, two.model.state_dict()[key], atol=1e-4), key
    # what it reports is the global batch's: the same loss and accuracy as one process, up to rounding
    assert abs(one.train_loss - two.train_loss) < 1e-4 and one.train_acc == pytest.approx(two.train_acc, abs=1e-3)
    assert one.test_acc == pytest.approx(two.test_acc, abs=2e-3)
    assert all(proc.returncode is not None for proc in two.ranks)  # every other rank has ended
    assert not Path(two.group.store).parent.exists()  # the rendezvous folder went with them


@pytest.mark.skipif(not parallel.SHARED_EXCHANGE, reason="each step goes through gloo here")
def test_the_exchange_file_holds_its_memory_from_the_start():
    # a sparse file's first write past a full tmpfs would kill a rank with SIGBUS mid-run; reserved, a full
    # tmpfs fails the start instead
    folder = tempfile.mkdtemp(prefix="cnn-test-", dir=parallel.where())
    try:
        path = os.path.join(folder, "exchange")
        parallel.Exchange.create(path, 2, 1000)
        assert os.stat(path).st_blocks * 512 >= parallel.Exchange.size(2, 1000)
    finally:
        shutil.rmtree(folder)


@pytest.mark.skipif(not parallel.SHARED_EXCHANGE, reason="each step goes through gloo here")
def test_with_no_room_for_the_exchange_a_run_trains_through_gloo(data_dir, tmp_path, threads, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)  # a full tmpfs, which a test cannot make
    threads(2)
    trainer = trained(data_dir, tmp_path, {**RUN, "epochs": 1}, data_parallel=True)
    assert trainer.fast_form["data_parallel"] == 2 and trainer.group.exchange is None
    assert trainer.samples_seen == 640


class Steps:
    """A plugin noting each step rank 0 ends."""

    def __init__(self):
        self.seen = []

    def on_batch_end(self, trainer):
        self.seen.append(trainer.step)


def test_a_stop_ends_every_rank_at_the_same_step(data_dir, tmp_path, threads):
    threads(2)
    steps = Steps()
    trainer = trained(data_dir, tmp_path, RUN, True, (steps,), should_stop=lambda: len(steps.seen) >= 3)
    assert trainer.stopped and steps.seen == [1, 2, 3]
    assert all(proc.returncode is not None for proc in trainer.ranks)


def test_a_run_ended_abruptly_lets_each_of_three_ranks_leave_on_its_own(data_dir, tmp_path, threads):
    # as a SIGTERM ends a worker (SystemExit in its main thread): rank 0 closes each rank's stdin, and each
    # rank, seeing EOF, leaves at once. A forked rank holding an earlier one's stdin open would keep that one
    # waiting until it was killed (2 s each).
    threads(3)
    steps = Steps()

    def sigterm():
        if len(steps.seen) == 2:
            raise SystemExit(143)
        return False

    trainer = Trainer(
        validate(RUN), data_dir, "cpu", (steps,), sigterm, cache_dir=tmp_path, autotune=False, data_parallel=True
    )
    with pytest.raises(SystemExit):
        trainer.run()
    assert len(trainer.ranks) == 2 and [proc.returncode for proc in trainer.ranks] == [0, 0]


def test_a_rank_that_dies_fails_the_run_with_a_sentence_and_leaves_no_process(data_dir, tmp_path, threads):
    threads(2)
    ranks = []

    class KillRankOne:
        def on_batch_end(self, trainer):
            if trainer.step == 2:
                ranks.extend(trainer.ranks)
                os.kill(trainer.ranks[0].pid, signal.SIGKILL)

    with pytest.raises(RuntimeError, match="data-parallel processes ended unexpectedly; the run cannot go on"):
        trained(data_dir, tmp_path, RUN, True, (KillRankOne(),))
    assert ranks and all(proc.returncode is not None for proc in ranks)


def test_auto_times_the_split_keeps_the_answer_and_learns_the_weights_one_process_learns(
    data_dir, tmp_path, threads, monkeypatch
):
    monkeypatch.setattr(split, "MIN_SECONDS", 0.0)  # a run this short would not be timed
    # a busy and a quiet machine each keep their own answer: the load average moving between the runs (as on a
    # shared CI machine) would send the later runs to a fresh key and time the split again
    monkeypatch.setattr(forms, "busy", lambda device: False)
    threads(1)
    one = trained(data_dir, tmp_path / "one", RUN_AUGMENTED, data_parallel=False)
    threads(2)
    first = Trainer(validate(RUN_AUGMENTED), data_dir, "cpu", cache_dir=tmp_path, data_parallel="auto")
    with ranks_seen() as seen:
        first.run()
    facts = first.fast_form["split"]
    assert facts["measured"] and set(facts["rates"]) == {"one", "split"} and facts["start_seconds"] > 0
    assert facts["chosen"] == split.pays(facts, 10 * 64 * 2)
    assert first.fast_form["data_parallel"] == (2 if facts["chosen"] else 1)
    assert seen and not any(alive(pid) for pid in seen)  # ranks timed the split; none outlives the run
    # timing the split trained a copy, and drew its crops and flips from a generator of its own: split or
    # not, the run learns what one process learns
    for key, weight in one.model.state_dict().items():
        assert torch.allclose(weight, first.model.state_dict()[key], atol=1e-4), key

    # the answer is kept under the way its steps were summed; the other way would be timed on its own
    path = tmp_path / "forms.json"
    entries = json.loads(path.read_text())
    shared = parallel.exchanges(2, parallel.floats(first.model))
    entry_key = split.cache_key(first, 2, shared)
    assert entry_key.endswith("|split|shm" if parallel.SHARED_EXCHANGE else "|split|gloo") and entry_key in entries
    assert split.cache_key(first, 2, not shared) not in entries
    # each run weighs the answer against its own planned images
    for faster, chosen in ((3.0, True), (1.0, False)):
        entries[entry_key] = {"rates": {"one": 1000.0, "split": 1000.0 * faster}, "start_seconds": 0.01}
        path.write_text(json.dumps(entries))
        threads(2)  # a run leaves torch at the threads it trained with
        again = Trainer(validate(RUN_AUGMENTED), data_dir, "cpu", cache_dir=tmp_path, data_parallel="auto")
        again.run()
        assert not again.fast_form["split"]["measured"] and again.fast_form["split"]["chosen"] is chosen
        assert (again.fast_form["data_parallel"], bool(again.ranks)) == ((2, True) if chosen else (1, False))


def test_a_failed_start_is_kept_and_later_runs_stay_in_one_process_without_trying(
    data_dir, tmp_path, threads, monkeypatch
):
    monkeypatch.setattr(split, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(forms, "busy", lambda device: False)
    monkeypatch.setattr(parallel, "START_TIMEOUT", datetime.timedelta(seconds=1))  # not 90 s of waiting
    broken = tmp_path / "broken" / "torch"  # the ranks crash importing it; this process has torch already
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("a broken install")\n')
    path = tmp_path / "forms.json"
    why = "the run's 2 data-parallel processes did not all start within 1 s"

    def run():
        threads(2)  # a run leaves torch at the threads it trained with
        trainer = Trainer(validate(RUN), data_dir, "cpu", cache_dir=tmp_path, data_parallel="auto")
        with ranks_seen() as seen:
            trainer.run()
        (entry_key,) = [k for k in json.loads(path.read_text()) if "|split|" in k]
        return trainer, seen, entry_key

    with monkeypatch.context() as broken_ranks:
        broken_ranks.setenv("PYTHONPATH", str(broken.parent), prepend=os.pathsep)
        broken_ranks.setattr(parallel, "FORK", False)  # ranks as new interpreters (as where they are not forked)
        first, _, entry_key = run()  # timing the split: the ranks do not start
        assert (first.fast_form["split"]["why"], first.fast_form["data_parallel"]) == (why, 1)
        assert json.loads(path.read_text())[entry_key]["failed"] == why
        entries = json.loads(path.read_text())  # a split timed earlier that pays: the ranks do not start
        entries[entry_key] = {"rates": {"one": 1000.0, "split": 3000.0}, "start_seconds": 0.01}
        path.write_text(json.dumps(entries))
        second, _, _ = run()
        assert (second.fast_form["split"]["why"], second.fast_form["data_parallel"]) == (why, 1)
        assert json.loads(path.read_text())[entry_key]["failed"] == why
    # the ranks would start now, but a later run does not try: it could wait 90 s for nothing each time
    again, seen, _ = run()
    facts = {"chosen": False, "measured": False, "why": f"ranks failed to start earlier: {why}"}
    assert (again.fast_form["split"], again.fast_form["data_parallel"], seen) == (facts, 1, set())


NOW = time.time()
KEPT = [
    ({"failed": "did not start", "at": NOW - 60}, True),
    ({"failed": "did not start", "at": NOW - split.FAILED_SECONDS - 60}, False),
    ({"failed": "did not start"}, False),
    ({"failed": 3, "at": NOW}, False),
    ({"failed": "did not start", "at": "yesterday"}, False),
    ({"rates": {"one": 1000.0}, "start_seconds": 0.5}, False),
    ([1, 2], False),
]


@pytest.mark.parametrize(
    "entry, kept", KEPT, ids=["failed", "a day old", "torn", "foreign", "no time", "rates", "list"]
)
def test_a_failed_start_is_kept_a_day_and_a_torn_or_foreign_entry_is_timed_again(tmp_path, entry, kept):
    path = tmp_path / "forms.json"
    path.write_text(json.dumps({"key": entry}))
    assert (split.saved(str(path), "key") == entry) is kept


def test_auto_leaves_a_short_run_in_one_process_untimed(data_dir, tmp_path, threads):
    threads(2)
    trainer = Trainer(validate(RUN), data_dir, "cpu", cache_dir=tmp_path, data_parallel="auto")
    trainer.run()
    facts = trainer.fast_form["split"]
    assert facts == {"chosen": False, "why": "too short to pay for starting more processes"}
    assert not trainer.ranks and trainer.fast_form["data_parallel"] == 1


ONE_PROCESS = [({"type": "batchnorm"}, "batch norm"), ({"type": "dropout", "p": 0.5}, "dropout")]


@pytest.mark.parametrize("layer, why", ONE_PROCESS)
def test_batch_norm_and_dropout_train_in_one_process(data_dir, tmp_path, threads, layer, why):
    # per-process batch statistics, or dropout masks drawn alike in every process, would change the function
    threads(2)
    layers = [{"type": "conv", "out": 4}, layer, {"type": "relu"}]
    fields = {k: v for k, v in RUN.items() if k != "channels"}
    trainer = trained(data_dir, tmp_path, {**fields, "layers": layers, "epochs": 1}, True)
    assert (trainer.fast_form["data_parallel"], trainer.fast_form["why"], trainer.ranks) == (1, why, [])


@pytest.fixture(scope="module")
def parallel_server(data_dir, tmp_path_factory):
    yield from server_in(data_dir, tmp_path_factory.mktemp("parallel"), ["--data-parallel"])


def alive(pid):
    """A process that exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def ranks_of(parent):
    """-> the pids of the data-parallel ranks that `parent` started and that have not exited."""
    ranks = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            if (stat.parent / "comm").read_bytes().strip() == parallel.NAME:
                ranks.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return ranks


@contextmanager
def ranks_seen():
    """-> a set that gets the pids of every data-parallel rank this process starts while the block runs (the
    real parallel.launch, each process it returns noted)."""
    seen, launch = set(), parallel.launch

    def noted(*args):
        proc = launch(*args)
        seen.add(proc.pid)
        return proc

    parallel.launch = noted
    try:
        yield seen
    finally:
        parallel.launch = launch


def processes_of(run_id):
    """-> (the run's worker pid, its data-parallel ranks' pids), once the ranks have started."""
    deadline = time.time() + 60
    while time.time() < deadline:
        worker = worker_pid(run_id)
        ranks = ranks_of(worker) if worker else []
        if ranks:
            return worker, ranks
        time.sleep(0.1)
    raise AssertionError(f"run {run_id}: no data-parallel ranks within 60 s")


SERVED = {"channels": [4, 8], "batch_size": 32, "train_samples": 4096, "epochs": 20, "precision": "fp32"}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="data-parallel training needs two cores")
def test_through_the_server_a_lone_run_trains_on_every_core_and_stop_ends_every_process(parallel_server):
    (run_id,) = parallel_server.start([SERVED])
    worker, ranks = processes_of(run_id)
    deadline = time.time() + 60
    run = parallel_server.get(f"/api/runs/{run_id}").json()
    while not run["metrics"]["batch"] and time.time() < deadline:
        time.sleep(0.2)
        run = parallel_server.get(f"/api/runs/{run_id}").json()
    form = run["info"]["fast_form"]
    assert form["data_parallel"] == len(ranks) + 1 == os.cpu_count() and run["info"]["threads"] == 1
    assert parallel_server.post(f"/api/runs/{run_id}/stop").status_code == 200
    assert parallel_server.wait(run_id)["status"] == "stopped"
    deadline = time.time() + 10
    while any(alive(pid) for pid in [worker, *ranks]) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in [worker, *ranks])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="data-parallel training needs two cores")
def test_through_the_server_a_killed_rank_fails_the_run_with_a_sentence(parallel_server):
    (run_id,) = parallel_server.start([SERVED])
    worker, ranks = processes_of(run_id)
    deadline = time.time() + 60
    while not parallel_server.get(f"/api/runs/{run_id}").json()["metrics"]["batch"] and time.time() < deadline:
        time.sleep(0.2)  # training: the ranks exchange gradients
    os.kill(ranks[0], signal.SIGKILL)
    run = parallel_server.wait(run_id)
    assert run["status"] == "failed" and "data-parallel processes ended unexpectedly" in run["error"], run["error"]
    deadline = time.time() + 10
    while alive(worker) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(worker)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="data-parallel training needs two cores")
def test_the_page_says_whether_a_run_alone_split_and_the_rates_that_decided_it(browser, data_dir, tmp_path):
    for api in server_in(data_dir, tmp_path, ["--data-parallel", "auto"]):  # the product's default
        page = browser.new_page()
        page.goto(api.url + "/")
        page.wait_for_selector("body[data-ready]")
        # two epochs of MNIST: long enough in one process for the split to be timed (cnn/split.py)
        (run_id,) = api.start([{"epochs": 2, "train_samples": 60000}])
        deadline = time.time() + 120
        while "fast_form" not in (info := api.get(f"/api/runs/{run_id}").json()["info"]) and time.time() < deadline:
            time.sleep(0.2)
        facts = info["fast_form"]["split"]
        assert facts["measured"] and facts["rates"]["one"] > 0 and facts["rates"]["split"] > 0
        assert info["fast_form"]["data_parallel"] == (os.cpu_count() if facts["chosen"] else 1)
        said = "split" if facts["chosen"] else "not split"
        rates = r"[\d.]+k images/s split vs [\d.]+k in one process, [\d.]+ s to start"
        expect(page.locator("#panel-a .fast-form")).to_contain_text(re.compile(rf" · {said} \(timed: {rates}\)$"))
        assert api.post(f"/api/runs/{run_id}/stop").status_code == 200
        assert api.wait(run_id)["status"] == "stopped"
        page.close()
